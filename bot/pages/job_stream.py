"""Server-sent events for the job page, fed from `job_events`, the table the bot's notifier reads.

    GET /jobs/{id}/events?team=&expires=&sig=&after=N

One stream per open page. Every `POLL_SECONDS` it sends the job's events newer than the last one sent
(`Last-Event-ID` on a reconnect), each with the job's state and step count; a comment line now and
then finds clients that went away. It ends after the job's final state, when the client goes, or
when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from bot.pages import access
from storage.domain import Job, JobEvent
from storage.errors import NotFound
from storage.job_folder import JobFolder

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
CLOSING_KEY = web.AppKey("pages_closing", asyncio.Event)


def compact(event: JobEvent, viewer: access.Viewer, job: Job) -> dict[str, Any] | None:
    """What the page's charts need of one event (None for events they do not show)."""
    d = event.data
    if event.kind == "progress":
        return {"id": event.id, "kind": "progress", "step": d.get("step"), "loss": d.get("loss")}
    if event.kind == "checkpoint":
        step = d.get("step")
        has_sample = (
            isinstance(step, int)
            and job.checkpoint_dir is not None
            and JobFolder(job.checkpoint_dir).sample(step).is_file()
        )
        return {
            "id": event.id,
            "kind": "checkpoint",
            "step": step,
            "map50": d.get("map50"),
            "map50_95": d.get("map50_95"),
            "val_loss": d.get("val_loss"),
            "loss": d.get("loss"),
            "ap": d.get("per_class_ap50") or {},
            "sample": viewer.link(f"/jobs/{job.id}/samples/{step}.jpg") if has_sample else None,
        }
    if event.kind == "state":
        return {"id": event.id, "kind": "state", "state": str(event.state), "at": event.at.isoformat()}
    return None


def job_summary(job: Job, progress: dict[str, object]) -> dict[str, Any]:
    """The job's header figures, sent with each batch of events."""
    return {
        "state": str(job.state),
        "final": job.state.is_final,
        "step": job.steps_completed,
        "steps": job.steps,
        "training_seconds": job.training_seconds,
        "eta_seconds": progress.get("eta_seconds"),
        "images_per_second": progress.get("images_per_second"),
    }


def _message(event_id: int, name: str, payload: object) -> bytes:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(payload, default=str)}\n\n".encode()


async def job_events(request: web.Request) -> web.StreamResponse:
    viewer = access.viewer(request)
    services = access.services(request)
    job_id = access.object_id(request, "job_id")
    try:
        job = services.jobs.get(viewer.team, job_id)
    except NotFound:
        raise web.HTTPNotFound(text="No such job in this team.") from None
    try:
        after = int(request.headers.get("Last-Event-ID") or request.query.get("after") or 0)
    except ValueError:
        after = 0
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    closing = request.app[CLOSING_KEY]
    quiet_since = time.monotonic()
    try:
        while not closing.is_set() and request.transport is not None and not request.transport.is_closing():
            events = services.jobs.events(job_id, after=after)
            if events:
                job = services.jobs.get(viewer.team, job_id)
                summary = job_summary(job, services.jobs.last_progress(job_id))
                for event in events:
                    shown = compact(event, viewer, job)
                    if shown is not None:
                        await response.write(_message(event.id, "job", {"event": shown, "job": summary}))
                after = events[-1].id
                quiet_since = time.monotonic()
            elif job.state.is_final:  # every state change is an event, so `job` is current
                await response.write(_message(after, "end", {}))
                break
            elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                await response.write(b": still here\n\n")
                quiet_since = time.monotonic()
            with contextlib.suppress(TimeoutError):  # the next poll
                await asyncio.wait_for(closing.wait(), POLL_SECONDS)
    except ConnectionResetError:
        pass  # the page was closed
    return response


async def on_shutdown(app: web.Application) -> None:
    """End every open stream, so the server stops at once instead of waiting for them."""
    app[CLOSING_KEY].set()
