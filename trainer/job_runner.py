"""One job in its own process: load data, train, export, verify, register the model, finish the job.

The worker starts this in a child process, so an out-of-memory kill or a crash here cannot take the
worker down. The child talks to the world only through its `JobLink` (trainer/job_link.py): the
database and the data folder for the embedded worker, the control queue and the blob store for a
remote one (cluster/remote.py). It dies with its worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path

from storage.checkpoints import latest_step
from storage.domain import Job, JobState
from storage.errors import UserError
from storage.jobs import IllegalTransition
from storage.services import open_services
from storage.settings import Settings
from trainer.events import Checkpoint, Event, Finished, Started, Step, to_json
from trainer.job_link import JobLink, JobLost, LocalLink
from trainer.job_log import capture_output

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 2.0
STOP_POLL_SECONDS = 0.5


class CanceledBeforeCheckpoint(Exception):
    """A stop arrived before the job's first checkpoint: there is nothing to keep."""


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when the worker dies (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class StopWatcher:
    """The trainer's `should_stop`: polls the job's stop flag at most every half second."""

    def __init__(self, link: JobLink, parent_pid: int) -> None:
        self.link, self.parent_pid = link, parent_pid
        self.last_poll, self.stop = 0.0, False

    def __call__(self) -> bool:
        if os.getppid() != self.parent_pid:
            os._exit(1)  # the worker is gone; its successor recovers this job from the checkpoint
        now = time.monotonic()
        if not self.stop and now - self.last_poll >= STOP_POLL_SECONDS:
            self.last_poll = now
            self.stop = self.link.stop_requested()
        if self.stop and latest_step(str(self.link.workdir)) is None:
            raise CanceledBeforeCheckpoint
        return self.stop


class Reporter:
    """The trainer's `on_event`: RUNNING at start, progress every 2 s, every checkpoint, STOPPING when
    a stop request ended the training (the model is exported next)."""

    def __init__(self, link: JobLink, base_seconds: float) -> None:
        self.link, self.base = link, base_seconds
        self.last = 0.0
        self.seconds = base_seconds

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            # A stop requested while preparing leaves the job STOP_REQUESTED.
            with contextlib.suppress(IllegalTransition):
                self.link.transition(JobState.RUNNING, {"device": event.device})
            message = {"message": f"training on {event.device}", **to_json(event)}
            self.link.progress("log", message)
        elif isinstance(event, Step):
            self._step(event)
        elif isinstance(event, Checkpoint):
            self._checkpoint(event)
        elif isinstance(event, Finished) and event.result.reason == "stop_requested":
            self.link.transition(JobState.STOPPING)

    def _step(self, event: Step) -> None:
        self.seconds = self.base + event.elapsed_seconds
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_SECONDS and event.step != event.steps:
            return
        self.last = now
        data: dict[str, object] = {
            "step": event.step,
            "steps": event.steps,
            "loss": event.loss["total"],
            "images_per_second": event.images_per_second,
            "eta_seconds": event.eta_seconds,
            "training_seconds": self.seconds,
        }
        self.link.progress("progress", data, steps_completed=event.step, training_seconds=self.seconds)

    def _checkpoint(self, event: Checkpoint) -> None:
        m = event.metrics
        train_loss = m.get("train_loss", {})
        data = {
            "step": event.step,
            "map50": m.get("map50"),
            "map50_95": m.get("map50_95"),
            "val_loss": m.get("val_loss"),
            "loss": train_loss.get("total") if isinstance(train_loss, dict) else None,
            "per_class_ap50": m.get("per_class_ap50"),
        }
        self.link.checkpointed()
        self.link.progress(
            "checkpoint",
            data,
            steps_completed=event.step,
            training_seconds=self.seconds,
            metrics={k: v for k, v in data.items() if v is not None},
        )


def job_config(job: Job, labels: tuple[str, ...], default_weights: str = "imagenet"):  # -> TrainConfig
    from trainer.config import TrainConfig

    known = {f.name for f in fields(TrainConfig)} - {"labels", "steps", "batch_size", "model", "max_seconds"}
    extra = {k: v for k, v in job.config.items() if k in known}
    extra.setdefault("weights", default_weights)
    remaining = max(job.max_minutes * 60 - job.training_seconds, 1.0)
    return TrainConfig(
        model=job.model,
        labels=labels,
        steps=job.steps,
        batch_size=job.batch_size,
        max_seconds=remaining,
        **extra,  # type: ignore[arg-type]
    )


def run_job(settings: Settings, job_id: int, parent_pid: int, gpu: str | None = None) -> None:
    """Entry point of the embedded worker's child process; `gpu` pins it to one GPU."""
    prepare_process(settings, f"job-{job_id}", parent_pid, gpu, idle_class=settings.training_idle_class)
    services = open_services(settings)
    try:
        link = LocalLink(services, job_id)
        capture_output(link.workdir, job_id, link.job.attempts)  # `fieldlens train logs N`, the job page
        run_linked(link, parent_pid, settings.home / "cache")
    finally:
        services.close()


def prepare_process(
    settings: Settings, name: str, parent_pid: int, gpu: str | None, *, idle_class: bool = False
) -> None:
    """Die with the worker, see only `gpu` (before TensorFlow loads), yield the CPU, log as `name`."""
    _die_with_parent(parent_pid)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    yield_cpu(idle_class)
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s",
    )


def yield_cpu(idle_class: bool) -> None:
    """Lower this process's CPU priority before it starts its threads (they inherit it).

    Training takes every core it can. On the bot's own machine (the embedded worker) it goes into
    Linux's idle scheduling class: a task that wakes up (the bot answering a command) takes the core
    from it at once, and training loses nothing while nothing else wants the CPU. A remote worker's
    job reports its own heartbeats, so there it only gets a lower priority (nice 10), never starved.
    """
    if idle_class and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)


def _fail(link: JobLink, message: str, seconds: float) -> None:
    try:
        link.finish(JobState.FAILED, {"reason": message}, None, error=message, training_seconds=seconds)
    except IllegalTransition:
        log.warning("job #%s could not be marked FAILED: it already ended", link.job.id)


def run_linked(link: JobLink, parent_pid: int, cache_dir: Path) -> None:
    """Run the job `link` leads to: the same path for the embedded worker and a remote one."""
    import tensorflow as tf

    from trainer.pipeline import train_and_deliver

    job = link.job
    reporter = Reporter(link, job.training_seconds)
    watcher = StopWatcher(link, parent_pid)
    try:
        inputs = link.inputs(cache_dir)
        config = job_config(job, inputs.labels.labels)
        if inputs.init_weights is not None:
            config = config.with_(weights="none")
        watcher()  # a stop while preparing cancels here
        shutil.rmtree(link.out_dir, ignore_errors=True)  # a half export from an earlier attempt
        result, manifest = train_and_deliver(
            config, inputs.data, link.workdir, link.out_dir, reporter, watcher, inputs.init_weights
        )
        metrics = {
            **manifest.metrics.headline(),
            "per_class_ap50": manifest.metrics.per_class_ap50,
            "images_per_second": result.images_per_second,
            "int8_ok": manifest.int8_ok,
        }
        link.finish(
            JobState.STOPPED if result.reason == "stop_requested" else JobState.SUCCEEDED,
            {"reason": result.reason, "verdict": manifest.verdict},
            f"job {job.id}: {job.description or '+'.join(inputs.dataset_names)}"[:100],
            steps_completed=result.steps_completed,
            training_seconds=job.training_seconds + result.seconds,
            metrics=metrics,
        )
    except JobLost:
        log.warning("job #%s was handed to another worker; this attempt ends here", job.id)
    except CanceledBeforeCheckpoint:
        link.finish(
            JobState.CANCELED,
            {"reason": "stopped before the first checkpoint"},
            None,
            training_seconds=reporter.seconds,
        )
    except (MemoryError, tf.errors.ResourceExhaustedError):
        _fail(
            link,
            f"Training ran out of memory at batch size {job.batch_size}. Retry the job with a smaller "
            f"batch size ({max(job.batch_size // 2, 1)}, say); it resumes from its last checkpoint.",
            reporter.seconds,
        )
    except UserError as e:
        _fail(link, str(e), reporter.seconds)
    except Exception:
        ref = secrets.token_hex(3)
        log.exception("job #%s failed (ref %s)", job.id, ref)
        _fail(
            link,
            f"Something went wrong in training (ref {ref}). Tell {link.operators} the ref; retrying the "
            "job resumes from its last checkpoint.",
            reporter.seconds,
        )
