"""The job page: state, plan, live charts, predictions per checkpoint, results and the live log.

GET /jobs/{id}                      the page (charts start from every event so far and the log from
                                    its last lines; the stream adds more of both)
GET /jobs/{id}/samples/{step}.jpg   the predictions picture of one checkpoint
GET /jobs/{id}/log.txt              the whole log

The job's events come from its feed (job_feed.py), which the job's streams share; the rest of the
page is read and rendered on the pages' thread (reader.py), off the event loop.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.pages import access
from bot.pages.job_feed import JobFeed, for_viewer, job_summary, read_lines
from bot.pages.job_stream import FEEDS_KEY
from bot.pages.results import results
from bot.pages.templating import html, render_text
from storage.domain import Job
from storage.errors import NotFound
from storage.job_folder import LOG_TAIL_BYTES, JobFolder, JobLog, warnings_in
from storage.model_folder import ModelFolder
from storage.services import Services
from storage.wording import STATE_SENTENCES

MAX_LOSS_POINTS = 1500  # training-loss points a page starts with; more are thinned evenly
LOG_LINES_SHOWN = 300  # log lines a page starts with
LOG_LINES_KEPT = 1000  # log lines a page keeps while the stream adds more


async def _feed(request: web.Request, viewer: access.Viewer) -> JobFeed:
    """The job's feed, read up to now, or 404 (no such job, or another team's)."""
    try:
        feed = await request.app[FEEDS_KEY].current(access.object_id(request, "job_id"))
    except NotFound:
        feed = None
    if feed is None or feed.job is None or feed.job.team_id != viewer.team:
        raise web.HTTPNotFound(text="No such job in this team.")
    return feed


def _job(request: web.Request) -> Job:
    """The job of a picture or log request, read on the loop (one row by its key), or 404."""
    viewer = access.viewer(request)
    try:
        return access.services(request).jobs.get(viewer.team, access.object_id(request, "job_id"))
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


def _log(job: Job) -> tuple[JobLog | None, int]:
    """The log's last lines (None before the job has a folder) and the byte where the stream goes on."""
    if not job.checkpoint_dir:
        return None, 0
    path = JobFolder(job.checkpoint_dir).log
    lines, at = read_lines(path, 0)
    return JobLog(lines, warnings_in(lines), path.is_file() and path.stat().st_size > LOG_TAIL_BYTES), at


def job_context(
    services: Services,
    viewer: access.Viewer,
    job: Job,
    events: list[dict[str, Any]],
    last_id: int,
    progress: dict[str, Any],
) -> dict[str, Any]:
    """What job.html shows; `events` are the job's compacted events up to `last_id` (job_feed.py)."""
    folder = JobFolder(job.checkpoint_dir or "")
    shown = [for_viewer(e, viewer) for e in _thinned(events)]
    plan: dict[str, Any] = job.config.get("plan") or {}  # type: ignore[assignment]
    train_images = plan.get("train_images") or 0
    found = _results(services, job)
    log, log_at = _log(job)
    return {
        "viewer": viewer,
        "job": job,
        "sentence": STATE_SENTENCES.get(job.state, ""),
        "summary": job_summary(job, progress),
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
        "log": log,
        "log_tail": log.lines[-LOG_LINES_SHOWN:] if log else [],
        "page_data": {
            "events": shown,
            "stream": viewer.link(f"/jobs/{job.id}/events"),
            "after": last_id,
            "log_at": log_at,
            "log_lines": LOG_LINES_KEPT,
            "labels": job.config.get("labels") or [],
            "final": job.state.is_final,
            "curves": found["curves"] if found else {},
        },
    }


def _render(services: Services, app: web.Application, viewer: access.Viewer, feed: tuple[Any, ...]) -> str:
    return render_text(app, "job.html", job_context(services, viewer, *feed))


async def job_page(request: web.Request) -> web.Response:
    viewer = access.viewer(request)
    feed = await _feed(request, viewer)
    # A copy of what the feed holds now: the reader's thread renders it while the loop goes on.
    now = (feed.job, list(feed.events), feed.last_id, dict(feed.progress))
    return html(await access.reader(request).run(_render, request.app, viewer, now))


async def job_sample(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    path = JobFolder(job.checkpoint_dir or "").sample(access.object_id(request, "step"))
    if not job.checkpoint_dir or not path.is_file():
        raise web.HTTPNotFound(text="No picture for that checkpoint.")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


async def job_log(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    folder = JobFolder(job.checkpoint_dir or "")
    if not job.checkpoint_dir or not folder.log.is_file():
        return web.Response(
            text="No log yet: the job has not started.\n", headers={"Cache-Control": "no-store"}
        )
    return web.FileResponse(
        folder.log, headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
    )
