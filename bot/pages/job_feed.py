"""What the pages know of a job, read once for all of its open pages: its events as the charts show
them, its header figures, and its log as it grows.

A `JobFeed` per job reads `job_events` (the table the notifier reads) and the job's log on the pages'
reader thread (reader.py): when a page of the job loads, and every POLL_SECONDS while a page holds
the job's event stream (job_stream.py). However many pages are open, that is one read a second, off
the event loop. Each new event is compacted once and kept, so a page load reads only what is new;
each open stream (a `Listener`) is sent what it has not had yet: its events from memory, its log
lines from one read of the file per position in it. A feed nobody used for KEEP_SECONDS is dropped.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.pages.access import Viewer
from bot.pages.reader import PageReader
from storage.domain import Job, JobEvent
from storage.job_folder import LOG_TAIL_BYTES, JobFolder
from storage.services import Services

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
KEEP_SECONDS = 60.0


def compact(event: JobEvent, job: Job) -> dict[str, Any] | None:
    """What the page's charts need of one event (None for events they do not show). A checkpoint's
    predictions picture is given by its path; `for_viewer` makes that a link for one viewer."""
    d = event.data
    if event.kind == "progress":
        return {"id": event.id, "kind": "progress", "step": d.get("step"), "loss": d.get("loss")}
    if event.kind == "checkpoint":
        step = d.get("step")
        has_sample = (
            isinstance(step, int)
            and job.checkpoint_dir is not None
            and JobFolder(job.checkpoint_dir).sample(step).is_file()  # drawn before the event is written
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
            "sample": f"/jobs/{job.id}/samples/{step}.jpg" if has_sample else None,
        }
    if event.kind == "state":
        return {"id": event.id, "kind": "state", "state": str(event.state), "at": event.at.isoformat()}
    return None


def for_viewer(event: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """A compacted event with its picture's path made a signed link for `viewer`."""
    sample = event.get("sample")
    return {**event, "sample": viewer.link(sample)} if sample else event


def job_summary(job: Job, progress: dict[str, Any]) -> dict[str, Any]:
    """The job's header figures, sent with each event."""
    return {
        "state": str(job.state),
        "final": job.state.is_final,
        "step": job.steps_completed,
        "steps": job.steps,
        "training_seconds": job.training_seconds,
        "eta_seconds": progress.get("eta_seconds"),
        "images_per_second": progress.get("images_per_second"),
    }


def read_lines(path: Path, start: int, limit: int = LOG_TAIL_BYTES) -> tuple[list[str], int]:
    """The complete lines of the file at `path` from byte `start` on, and the byte after the last of
    them (where to read next). When more than `limit` bytes are new, only the lines of the last
    `limit` bytes; a file shorter than `start` (written anew) is read from its beginning."""
    try:
        size = path.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return [], start
    if size < start:
        start = 0
    begin = max(start, size - limit)
    if begin >= size:
        return [], start
    with open(path, "rb") as f:
        f.seek(begin)
        data = f.read(size - begin)
    if begin > start:  # skipped ahead: the first line is cut
        cut = data.find(b"\n") + 1
        data, begin = data[cut:], begin + cut
    last = data.rfind(b"\n")
    if last < 0:  # no whole line yet
        return [], begin if begin > start else start
    return data[: last + 1].decode("utf-8", errors="replace").splitlines(), begin + last + 1


@dataclass(frozen=True)
class Reading:
    """What one read of a job found."""

    job: Job
    events: list[dict[str, Any]]  # the new events, compacted
    last_id: int  # the newest event's id, shown or not
    progress: dict[str, Any] | None  # the data of the newest progress event among them
    logs: dict[int, tuple[list[str], int]]  # log position asked -> new lines, next position


def read_job(services: Services, job_id: int, after: int, log_positions: frozenset[int]) -> Reading:
    """On the reader's thread: the job, its events after `after`, its log from each position."""
    job = services.jobs.get_any(job_id)  # first: once it is final, its last event is among the events
    raw = services.jobs.events(job_id, after=after)
    progress = next((e.data for e in reversed(raw) if e.kind == "progress"), None)
    shown = [c for e in raw if (c := compact(e, job)) is not None]
    log = JobFolder(job.checkpoint_dir).log if job.checkpoint_dir else None
    logs = {at: read_lines(log, at) if log else ([], at) for at in log_positions}
    return Reading(job, shown, raw[-1].id if raw else after, progress, logs)


def message(name: str, payload: object, event_id: int | None = None) -> bytes:
    """One server-sent event. Log lines carry no id: a stream's id is the last job event it had."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(payload, default=str)}\n\n".encode()


@dataclass(eq=False)
class Listener:
    """One open event stream: what it has had, and the messages waiting to go (b"" ends it)."""

    viewer: Viewer
    after: int
    log_at: int
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)


class JobFeed:
    def __init__(self, job_id: int, reader: PageReader) -> None:
        self.job_id = job_id
        self.reader = reader
        self.job: Job | None = None
        self.events: list[dict[str, Any]] = []  # compacted, in id order
        self.ids: list[int] = []  # their ids, to find where a listener is
        self.last_id = 0
        self.progress: dict[str, Any] = {}
        self.listeners: set[Listener] = set()
        self.used_at = time.monotonic()
        self._reading: asyncio.Future[None] | None = None
        self._polling: asyncio.Task[None] | None = None

    @property
    def summary(self) -> dict[str, Any]:
        assert self.job is not None
        return job_summary(self.job, self.progress)

    async def refresh(self) -> None:
        """Read what is new. Callers at the same time share one read; NotFound when there is no job."""
        self.used_at = time.monotonic()
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._read_done)
        await asyncio.shield(self._reading)

    def _read_done(self, future: asyncio.Future[None]) -> None:
        self._reading = None
        if not future.cancelled():
            future.exception()  # retrieved here; every caller that awaited it got it too

    async def _read(self) -> None:
        positions = frozenset(listener.log_at for listener in self.listeners)
        reading = await self.reader.run(read_job, self.job_id, self.last_id, positions)
        self.job = reading.job
        self.events += reading.events
        self.ids += [e["id"] for e in reading.events]
        self.last_id = reading.last_id
        if reading.progress is not None:
            self.progress = reading.progress
        for listener in list(self.listeners):
            self._send(listener, reading.logs.get(listener.log_at))

    def listen(self, viewer: Viewer, after: int, log_at: int) -> Listener:
        """A new stream: it gets the events after `after` at once, then whatever the polls find."""
        listener = Listener(viewer, after, log_at)
        self.listeners.add(listener)
        self._send(listener, None)
        if self._polling is None and listener in self.listeners:
            self._polling = asyncio.create_task(self._poll(), name=f"fieldlens-job-feed-{self.job_id}")
        return listener

    def leave(self, listener: Listener) -> None:
        self.listeners.discard(listener)
        self.used_at = time.monotonic()

    def _send(self, listener: Listener, log: tuple[list[str], int] | None) -> None:
        assert self.job is not None
        summary = self.summary
        for event in self.events[bisect.bisect_right(self.ids, listener.after) :]:
            shown = for_viewer(event, listener.viewer)
            listener.queue.put_nowait(message("job", {"event": shown, "job": summary}, event["id"]))
        listener.after = max(listener.after, self.last_id)
        if log is not None:
            lines, listener.log_at = log
            if lines:
                listener.queue.put_nowait(message("log", {"lines": lines, "at": listener.log_at}))
        if self.job.state.is_final:  # every state change is an event: this one's was just sent
            listener.queue.put_nowait(message("end", {}, listener.after))
            listener.queue.put_nowait(b"")
            self.listeners.discard(listener)

    async def _poll(self) -> None:
        try:
            while self.listeners:
                await asyncio.sleep(POLL_SECONDS)
                if not self.listeners:
                    break
                try:
                    await self.refresh()
                except Exception:  # the database busy, say: the next poll tries again
                    log.warning("could not read job %s for its pages", self.job_id, exc_info=True)
        finally:
            self._polling = None

    def close(self) -> None:
        """End every stream of this job (the server is stopping)."""
        for listener in list(self.listeners):
            listener.queue.put_nowait(b"")
        self.listeners.clear()
        if self._polling is not None:
            self._polling.cancel()


class JobFeeds:
    """The feed of each job a page has asked about lately."""

    def __init__(self, reader: PageReader) -> None:
        self.reader = reader
        self.feeds: dict[int, JobFeed] = {}

    async def current(self, job_id: int) -> JobFeed:
        """The job's feed, read up to now (NotFound when there is no such job)."""
        now = time.monotonic()
        for old in [f for f in self.feeds.values() if not f.listeners and now - f.used_at > KEEP_SECONDS]:
            del self.feeds[old.job_id]
        feed = self.feeds.get(job_id)
        if feed is None:
            feed = self.feeds[job_id] = JobFeed(job_id, self.reader)
        try:
            await feed.refresh()
        except Exception:
            if feed.job is None:  # never read: there may be no such job
                self.feeds.pop(job_id, None)
            raise
        return feed

    def close(self) -> None:
        """End every open stream (the server is stopping)."""
        for feed in self.feeds.values():
            feed.close()
        self.feeds.clear()
