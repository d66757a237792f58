"""Server-sent events for the job page, fed from `job_events` and the job's log through its feed.

    GET /jobs/{id}/events?team=&expires=&sig=&after=N&log=B

One stream per open page; every stream of a job is fed by the job's one `JobFeed` (job_feed.py),
which reads the database once a second on the pages' thread however many are open. A stream sends
the job's events newer than `after` (`Last-Event-ID` on a reconnect), each with the job's state and
step count, as `job` events; the log's new lines from byte `log` on as `log` events; a comment line
now and then finds clients that went away. It ends after the job's final state, when the client
goes, or when the server shuts down.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.pages import access
from bot.pages.job_feed import JobFeeds
from storage.errors import NotFound

KEEPALIVE_SECONDS = 15.0
FEEDS_KEY = web.AppKey("job_feeds", JobFeeds)


def _number(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


async def job_events(request: web.Request) -> web.StreamResponse:
    viewer = access.viewer(request)
    job_id = access.object_id(request, "job_id")
    try:
        feed = await request.app[FEEDS_KEY].current(job_id)
    except NotFound:
        feed = None
    if feed is None or feed.job is None or feed.job.team_id != viewer.team:
        raise web.HTTPNotFound(text="No such job in this team.")
    after = _number(request.headers.get("Last-Event-ID") or request.query.get("after"))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    listener = feed.listen(viewer, after, _number(request.query.get("log")))
    try:
        while True:
            try:
                message = await asyncio.wait_for(listener.queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                message = b": still here\n\n"
            if not message:  # the job ended, or the server is stopping
                break
            await response.write(message)
    except ConnectionResetError:
        pass  # the page was closed
    finally:
        feed.leave(listener)
    return response


async def on_shutdown(app: web.Application) -> None:
    """End every open stream, so the server stops at once instead of waiting for them."""
    app[FEEDS_KEY].close()
