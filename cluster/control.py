"""`fieldlens control`: the bot machine's consumer of the control queue, the only process that writes
what remote workers report into SQLite.

    claim      a worker got a train task: QUEUED -> PREPARING owned by it (compare-and-set), or None
    report     a state change (RUNNING, STOPPING) or a progress/checkpoint event
    finish     a final state; with a model, its folder is fetched from the blob store and registered
    heartbeat  a worker is alive: its jobs' heartbeats, and what `fieldlens worker list` shows;
               answers which of the jobs it names it no longer owns (it stops training them)

Every report is fenced by worker id: one from a worker that no longer owns the job (the reaper gave
it to another while this one was frozen, say) is dropped, in the same transaction that would have
written it. The same process runs the Dispatcher (cluster/dispatch.py) in a thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from typing import Any

from celery import Celery

from cluster.app import (
    CLAIM,
    CONTROL_QUEUE,
    FINISH,
    HEARTBEAT,
    LOG,
    RELEASE,
    REPORT,
    STOP_KEY,
    WORKERS_KEY,
    answer,
    make_app,
)
from cluster.app import redis_client as make_redis
from cluster.dispatch import Dispatcher
from cluster.store import ObjectStore, get_folder, open_store
from storage.db import immediate
from storage.domain import JobState
from storage.job_folder import JobFolder
from storage.jobs import IllegalTransition
from storage.model_folder import MANIFEST
from storage.services import Services, open_services
from storage.settings import Settings

log = logging.getLogger(__name__)


class Control:
    """What the control tasks do, on one SQLite connection (the consumer runs one task at a time)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.broker_url
        self.settings = settings
        self.services: Services = open_services(settings)
        self.store = open_store(settings.store_url, settings.s3_endpoint_url)
        self.redis = make_redis(settings.broker_url)
        self.dropped = 0  # reports from workers that no longer owned their job

    def _drop(self, job_id: int, worker_id: str, what: str) -> None:
        self.dropped += 1
        log.warning("dropped %s for job #%s from %s, which no longer owns it", what, job_id, worker_id)

    def claim(self, job_id: int, worker_id: str, reply_to: str | None = None) -> dict[str, Any] | None:
        found = self._claim(job_id, worker_id)
        answer(self.redis, reply_to, found)
        return found

    def _claim(self, job_id: int, worker_id: str) -> dict[str, Any] | None:
        job = self.services.jobs.claim_job(job_id, worker_id)
        if job is None:
            log.info("job #%s is no longer queued; %s does not get it", job_id, worker_id)
            return None
        self.redis.delete(STOP_KEY.format(job_id=job_id))
        log.info("job #%s claimed by %s (attempt %s)", job_id, worker_id, job.attempts)
        return {
            "id": job.id,
            "team_id": job.team_id,
            "model": job.model,
            "steps": job.steps,
            "batch_size": job.batch_size,
            "max_minutes": job.max_minutes,
            "description": job.description,
            "training_seconds": job.training_seconds,
            "attempts": job.attempts,
            "from_model_id": job.from_model_id,
            "config": job.config,
        }

    def report(
        self, job_id: int, worker_id: str, kind: str, data: dict[str, Any], columns: dict[str, Any]
    ) -> None:
        jobs = self.services.jobs
        try:
            with immediate(self.services.db):
                if not jobs.owned_by(job_id, worker_id):
                    return self._drop(job_id, worker_id, kind)
                if kind == "state":
                    jobs.transition(job_id, JobState(data.pop("to")), data)
                else:
                    jobs.progress(job_id, kind, data, **columns)
        except IllegalTransition as e:
            log.warning("job #%s: %s (report from %s)", job_id, e, worker_id)
        if kind == "checkpoint":
            self._copy_job_files(job_id, data.get("step"))

    def finish(
        self,
        job_id: int,
        worker_id: str,
        to: str,
        data: dict[str, Any],
        model_name: str | None,
        model_prefix: str | None,
        columns: dict[str, Any],
    ) -> None:
        services, jobs = self.services, self.services.jobs
        job = jobs.get_any(job_id)
        folder = None
        if model_name is not None and model_prefix is not None and jobs.owned_by(job_id, worker_id):
            folder = self.settings.home / "models" / job.team_id / f"job-{job_id}"
            if not get_folder(self.store, model_prefix, folder, MANIFEST):
                raise FileNotFoundError(f"{model_prefix} is not complete in {self.store.url}")
        try:
            with immediate(services.db):
                if not jobs.owned_by(job_id, worker_id):
                    self._drop(job_id, worker_id, f"the end ({to})")
                    return
                if folder is not None:
                    model = services.models.register(
                        job.team_id,
                        folder,
                        model_name or "",
                        job_id=job_id,
                        parent_model_id=job.from_model_id,
                    )
                    data, columns = {**data, "model_id": model.id}, {**columns, "model_id": model.id}
                jobs.finish(job_id, JobState(to), data, **columns)
        except IllegalTransition as e:
            log.warning("job #%s: %s (end reported by %s)", job_id, e, worker_id)
        self._copy_job_files(job_id, None)

    def heartbeat(
        self, worker: str, job_ids: list[int], info: dict[str, Any], reply_to: str | None = None
    ) -> list[int]:
        """Record that `worker` is alive; answers with those of `job_ids` it no longer owns."""
        jobs = self.services.jobs
        lost = [j for j in job_ids if not jobs.owned_by(j, worker)]
        for job_id in lost:
            self._drop(job_id, worker, "a heartbeat")
        jobs.heartbeat(worker, [j for j in job_ids if j not in lost])
        info = {**info, "last_seen": time.time()}
        if not job_ids:  # the worker process's own beat; its job's beats come from the job's process
            self.redis.hset(WORKERS_KEY, worker, json.dumps(info))
        answer(self.redis, reply_to, lost)
        return lost

    def release(self, job_id: int, worker_id: str) -> bool:
        """A worker shutting down gives its job back: queued again, to resume from its last complete
        checkpoint without counting an attempt. Dropped when the worker no longer owns the job."""
        released = self.services.recovery.recover(
            job_id, "its worker shut down", count_attempt=False, owner=worker_id
        )
        if not released:
            self._drop(job_id, worker_id, "a hand-back")
        return released

    def log_updated(self, job_id: int, worker_id: str) -> None:
        """The job's log in the store grew: copy it for the job page and `fieldlens train logs`."""
        if self.services.jobs.owned_by(job_id, worker_id):
            self._copy_job_files(job_id, None)

    def _copy_job_files(self, job_id: int, step: int | None) -> None:
        """The log and the checkpoint's sample picture, for the job page and `fieldlens train logs`."""
        job = self.services.jobs.get_any(job_id)
        folder = JobFolder(job.checkpoint_dir or self.settings.home / "jobs" / str(job_id))
        with contextlib.suppress(OSError):
            self.store.get_file(f"jobs/{job_id}/job.log", folder.log)
            if step is not None:
                self.store.get_file(f"jobs/{job_id}/samples/{folder.sample(step).name}", folder.sample(step))


def register_control_tasks(app: Celery, control: Control) -> None:
    app.task(name=CLAIM)(control.claim)
    app.task(name=REPORT)(control.report)
    app.task(name=FINISH)(control.finish)
    app.task(name=HEARTBEAT)(control.heartbeat)
    app.task(name=RELEASE)(control.release)
    app.task(name=LOG)(control.log_updated)


def _dispatch(settings: Settings, app: Celery, store: ObjectStore, stop: threading.Event) -> None:
    """The Dispatcher's thread, with its own SQLite connection (connections stay in their thread)."""
    assert settings.broker_url
    services = open_services(settings)
    try:
        Dispatcher(services, app, store, make_redis(settings.broker_url)).run(stop)
    finally:
        services.close()


def run_control(settings: Settings, scheduler: bool = True, loglevel: str = "INFO") -> None:
    """Consume the control queue and dispatch queued jobs until interrupted (runs in this process)."""
    assert settings.broker_url
    app = make_app(settings.broker_url)
    control = Control(settings)
    register_control_tasks(app, control)
    stop = threading.Event()
    thread = threading.Thread(
        target=_dispatch, args=(settings, app, control.store, stop), name="fieldlens-dispatch", daemon=True
    )
    thread.start()
    sched = None
    if scheduler:
        from storage.maintenance import start_scheduler

        sched = start_scheduler(settings)
    name = f"fieldlens-control-{os.getpid()}@{socket.gethostname()}"
    try:
        app.worker_main(
            ["worker", "-Q", CONTROL_QUEUE, "-P", "solo", "-n", name, "--without-gossip", "--without-mingle",
             f"--loglevel={loglevel}"]
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(5)
        if sched is not None:
            sched.shutdown(wait=False)
        control.services.close()
