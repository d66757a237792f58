"""`fieldlens worker`: claims queued jobs and runs each in a child process.

    loop every poll interval:
        while a slot is free: claim the oldest QUEUED job, start a child process for it
        for each child: ended without finishing its job -> FAILED (killed: out of memory; else crashed)
                        no progress for `stall_seconds` -> killed, FAILED
        every `heartbeat_seconds`: heartbeat for the jobs it runs
    on shutdown: stop the children, hand their jobs back to the queue (they resume from a checkpoint)

Jobs of dead workers are recovered by the maintenance scheduler (storage/maintenance.py), which
`fieldlens worker` and `fieldlens bot` run next to the loop. This process never imports TensorFlow;
only the children do.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from storage.domain import JobState
from storage.jobs import IllegalTransition, JobStore
from storage.services import open_services
from storage.settings import Settings
from trainer.job_runner import run_job

log = logging.getLogger(__name__)


@dataclass
class Running:
    process: BaseProcess
    last_event_id: int
    last_change: float
    gpu: str | None = None


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        worker_id: str | None = None,
        slots: int = 1,
        poll_seconds: float = 1.0,
        gpus: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.gpus = list(gpus or [])
        self.slots = len(self.gpus) or slots  # one job per GPU; otherwise `slots` jobs on the CPU
        self.poll_seconds = poll_seconds
        self.stop_event = threading.Event()
        self._context = multiprocessing.get_context("spawn")  # no forked TensorFlow or sqlite state

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, max_jobs: int | None = None, exit_when_idle: bool = False) -> int:
        """Run until stopped (or after `max_jobs`, or when idle); returns the number of jobs run."""
        services = open_services(self.settings)
        jobs = services.jobs
        running: dict[int, Running] = {}
        started = 0
        last_beat = 0.0
        log.info("worker %s ready with %s slot(s)", self.worker_id, self.slots)
        try:
            while not self.stop_event.is_set():
                while len(running) < self.slots and (max_jobs is None or started < max_jobs):
                    job = jobs.claim(self.worker_id)
                    if job is None:
                        break
                    if job.id in running:  # cannot happen: reaping re-checks heartbeats under the lock
                        log.error("job #%s was handed out again while it runs here", job.id)
                        continue
                    running[job.id] = self._start(job.id, jobs, {r.gpu for r in running.values() if r.gpu})
                    started += 1
                for job_id, run in list(running.items()):
                    if not run.process.is_alive():
                        run.process.join()
                        self._after_exit(jobs, job_id, run.process.exitcode)
                        del running[job_id]
                    else:
                        self._check_stall(jobs, job_id, run)
                if time.monotonic() - last_beat >= self.settings.heartbeat_seconds:
                    jobs.heartbeat(self.worker_id, list(running))
                    last_beat = time.monotonic()
                done = max_jobs is not None and started >= max_jobs
                if not running and (done or exit_when_idle):
                    break
                self.stop_event.wait(self.poll_seconds)
        finally:
            for run in running.values():
                run.process.terminate()
            for run in running.values():
                run.process.join(30)
                if run.process.is_alive():
                    run.process.kill()
            released = services.recovery.release(self.worker_id)
            if released:
                log.info("worker %s handed jobs %s back to the queue", self.worker_id, released)
            services.close()
        return started

    def _start(self, job_id: int, jobs: JobStore, busy: set[str]) -> Running:
        gpu = next((g for g in self.gpus if g not in busy), None)
        process = self._context.Process(
            target=run_job, args=(self.settings, job_id, os.getpid(), gpu), name=f"fieldlens-job-{job_id}"
        )
        process.start()
        log.info("job #%s started in process %s%s", job_id, process.pid, f" on GPU {gpu}" if gpu else "")
        return Running(process, jobs.last_event_id(job_id), time.monotonic(), gpu)

    def _check_stall(self, jobs: JobStore, job_id: int, run: Running) -> None:
        last = jobs.last_event_id(job_id)
        if last != run.last_event_id:
            run.last_event_id, run.last_change = last, time.monotonic()
        elif time.monotonic() - run.last_change > self.settings.stall_seconds:
            log.error("job #%s made no progress for %.0f s; killing it", job_id, self.settings.stall_seconds)
            run.process.kill()

    def _after_exit(self, jobs: JobStore, job_id: int, exitcode: int | None) -> None:
        job = jobs.get_any(job_id)
        if job.state.is_final:
            return
        if exitcode == -signal.SIGKILL:
            message = (
                "The training process was killed, most likely because it ran out of memory (or made no "
                f"progress for {self.settings.stall_seconds:.0f} s). Retry the job with a smaller batch "
                f"size than {job.batch_size}."
            )
        else:
            message = f"The training process ended unexpectedly (exit code {exitcode}). Retry the job."
        if job.steps_completed:
            message += " Its last checkpoint is kept: a retry resumes from it."
        with contextlib.suppress(IllegalTransition):
            jobs.finish(job_id, JobState.FAILED, {"reason": message}, error=message)
        log.error("job #%s: %s", job_id, message)
