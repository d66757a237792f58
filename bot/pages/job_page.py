"""The job page: state, plan, live charts, predictions per checkpoint, results and the log.

GET /jobs/{id}                      the page (charts start from every event so far; the stream adds more)
GET /jobs/{id}/samples/{step}.jpg   the predictions picture of one checkpoint
GET /jobs/{id}/log.txt              the whole log
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bot.pages import access
from bot.pages.job_stream import compact, job_summary
from bot.pages.results import results
from bot.pages.templating import render
from storage.domain import Job
from storage.errors import NotFound
from storage.job_folder import JobFolder
from storage.model_folder import ModelFolder
from storage.services import Services
from storage.wording import STATE_SENTENCES

MAX_LOSS_POINTS = 1500  # training-loss points a page starts with; more are thinned evenly
LOG_LINES_SHOWN = 300


def _job(request: web.Request) -> tuple[access.Viewer, Services, Job]:
    viewer = access.viewer(request)
    services = access.services(request)
    try:
        return viewer, services, services.jobs.get(viewer.team, access.object_id(request, "job_id"))
    except NotFound:
        raise web.HTTPNotFound(text="No such job in this team.") from None


def _thinned(shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every checkpoint and state event, and at most MAX_LOSS_POINTS progress events."""
    progress = [e for e in shown if e["kind"] == "progress"]
    every = -(-len(progress) // MAX_LOSS_POINTS) if progress else 1
    keep = {id(e) for e in progress[::every]} | ({id(progress[-1])} if progress else set())
    return [e for e in shown if e["kind"] != "progress" or id(e) in keep]


def _datasets(services: Services, job: Job) -> list[tuple[int, str]]:
    found = []
    for dataset_id in job.dataset_ids:
        try:
            found.append((dataset_id, services.datasets.get_by_id(job.team_id, dataset_id).name))
        except NotFound:  # deleted since
            continue
    return found


def _results(services: Services, job: Job) -> dict[str, Any] | None:
    if job.model_id is None:
        return None
    try:
        model = services.models.get(job.team_id, job.model_id)
        return results(ModelFolder(model.path).manifest())
    except (NotFound, OSError):
        return None


def job_context(services: Services, viewer: access.Viewer, job: Job) -> dict[str, Any]:
    folder = JobFolder(job.checkpoint_dir or "")
    events = services.jobs.events(job.id)
    shown = _thinned([c for e in events if (c := compact(e, viewer, job)) is not None])
    plan: dict[str, Any] = job.config.get("plan") or {}  # type: ignore[assignment]
    train_images = plan.get("train_images") or 0
    found = _results(services, job)
    return {
        "viewer": viewer,
        "job": job,
        "sentence": STATE_SENTENCES.get(job.state, ""),
        "summary": job_summary(job, services.jobs.last_progress(job.id)),
        "plan": plan,
        "epochs_done": job.steps_completed * job.batch_size / train_images if train_images else None,
        "datasets": _datasets(services, job),
        "checkpoints": [e for e in shown if e["kind"] == "checkpoint"],
        "samples": [
            {"step": step, "url": viewer.link(f"/jobs/{job.id}/samples/{step}.jpg")}
            for step in folder.sample_steps()
        ]
        if job.checkpoint_dir
        else [],
        "results": found,
        "page_data": {
            "events": shown,
            "stream": viewer.link(f"/jobs/{job.id}/events", after=events[-1].id if events else 0),
            "labels": job.config.get("labels") or [],
            "final": job.state.is_final,
            "curves": found["curves"] if found else {},
        },
    }


async def job_page(request: web.Request) -> web.Response:
    viewer, services, job = _job(request)
    context = job_context(services, viewer, job)
    log = await asyncio.to_thread(JobFolder(job.checkpoint_dir).read_log) if job.checkpoint_dir else None
    context.update(log=log, log_tail=log.lines[-LOG_LINES_SHOWN:] if log else [])
    return await render("job.html", request, context)


async def job_sample(request: web.Request) -> web.StreamResponse:
    _, _, job = _job(request)
    path = JobFolder(job.checkpoint_dir or "").sample(access.object_id(request, "step"))
    if not job.checkpoint_dir or not path.is_file():
        raise web.HTTPNotFound(text="No picture for that checkpoint.")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


async def job_log(request: web.Request) -> web.StreamResponse:
    _, _, job = _job(request)
    folder = JobFolder(job.checkpoint_dir or "")
    if not job.checkpoint_dir or not folder.log.is_file():
        return web.Response(
            text="No log yet: the job has not started.\n", headers={"Cache-Control": "no-store"}
        )
    return web.FileResponse(
        folder.log, headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
    )
