"""One job in its own process: load data, train, export, verify, register the model, finish the job.

The worker starts this in a child process, so an out-of-memory kill or a crash here cannot take the
worker down. The child talks to the world only through the database (state, progress events) and the
job's folder (checkpoints); it dies with its worker.
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
from storage.jobs import IllegalTransition, JobStore
from storage.model_folder import ModelFolder
from storage.services import Services, open_services
from storage.settings import Settings
from trainer.events import Checkpoint, Event, Finished, Started, Step, to_json
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

    def __init__(self, jobs: JobStore, job: Job, parent_pid: int) -> None:
        self.jobs, self.job, self.parent_pid = jobs, job, parent_pid
        self.last_poll, self.stop = 0.0, False

    def __call__(self) -> bool:
        if os.getppid() != self.parent_pid:
            os._exit(1)  # the worker is gone; its successor recovers this job from the checkpoint
        now = time.monotonic()
        if not self.stop and now - self.last_poll >= STOP_POLL_SECONDS:
            self.last_poll = now
            self.stop = self.jobs.state_of(self.job.id)[1]
        if self.stop and latest_step(self.job.checkpoint_dir) is None:
            raise CanceledBeforeCheckpoint
        return self.stop


class Reporter:
    """The trainer's `on_event`: RUNNING at start, progress every 2 s, every checkpoint, STOPPING when
    a stop request ended the training (the model is exported next)."""

    def __init__(self, jobs: JobStore, job: Job, base_seconds: float) -> None:
        self.jobs, self.job, self.base = jobs, job, base_seconds
        self.last = 0.0
        self.seconds = base_seconds

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            # A stop requested while preparing leaves the job STOP_REQUESTED.
            with contextlib.suppress(IllegalTransition):
                self.jobs.transition(self.job.id, JobState.RUNNING, {"device": event.device})
            message = {"message": f"training on {event.device}", **to_json(event)}
            self.jobs.progress(self.job.id, "log", message)
        elif isinstance(event, Step):
            self._step(event)
        elif isinstance(event, Checkpoint):
            self._checkpoint(event)
        elif isinstance(event, Finished) and event.result.reason == "stop_requested":
            self.jobs.transition(self.job.id, JobState.STOPPING)

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
        self.jobs.progress(
            self.job.id, "progress", data, steps_completed=event.step, training_seconds=self.seconds
        )

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
        self.jobs.progress(
            self.job.id,
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
    """Entry point of the child process; `gpu` pins it to one GPU (before TensorFlow loads)."""
    _die_with_parent(parent_pid)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    # Training takes every core it can; a lower CPU priority keeps the bot and the CLI on the same
    # machine answering quickly, and costs training nothing when nothing else wants the CPU.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s job-{job_id} %(name)s: %(message)s",
    )
    services = open_services(settings)
    capture_output(services, job_id)  # the job's log file: `fieldlens train logs N`, the job page
    try:
        _run(services, job_id, parent_pid)
    finally:
        services.close()


def _fail(jobs: JobStore, job_id: int, message: str, seconds: float) -> None:
    try:
        jobs.finish(job_id, JobState.FAILED, {"reason": message}, error=message, training_seconds=seconds)
    except IllegalTransition:
        log.warning("job #%s could not be marked FAILED: it already ended", job_id)


def _run(services: Services, job_id: int, parent_pid: int) -> None:
    import tensorflow as tf

    from trainer.pipeline import load_data, train_and_deliver

    jobs = services.jobs
    job = jobs.get_any(job_id)
    base_seconds = job.training_seconds
    reporter = Reporter(jobs, job, base_seconds)
    watcher = StopWatcher(jobs, job, parent_pid)
    workdir = Path(job.checkpoint_dir or services.settings.home / "jobs" / str(job_id))
    out_dir = services.settings.home / "models" / job.team_id / f"job-{job_id}"
    try:
        names = [services.datasets.get_by_id(job.team_id, i).name for i in job.dataset_ids]
        labels, data = load_data(services, job.team_id, names, services.settings.home / "cache")
        config = job_config(job, labels.labels)
        init_weights = None
        if job.from_model_id is not None:
            parent = services.models.get(job.team_id, job.from_model_id)
            init_weights = ModelFolder(parent.path).weights
            config = config.with_(weights="none")
        watcher()  # a stop while preparing cancels here
        shutil.rmtree(out_dir, ignore_errors=True)  # a half export from an earlier attempt
        result, manifest = train_and_deliver(config, data, workdir, out_dir, reporter, watcher, init_weights)
        model = services.models.register(
            job.team_id,
            out_dir,
            name=f"job {job_id}: {job.description or '+'.join(names)}"[:100],
            job_id=job_id,
            parent_model_id=job.from_model_id,
        )
        metrics = {
            **manifest.metrics.headline(),
            "per_class_ap50": manifest.metrics.per_class_ap50,
            "images_per_second": result.images_per_second,
            "int8_ok": manifest.int8_ok,
        }
        jobs.finish(
            job_id,
            JobState.STOPPED if result.reason == "stop_requested" else JobState.SUCCEEDED,
            {"reason": result.reason, "model_id": model.id, "verdict": manifest.verdict},
            model_id=model.id,
            steps_completed=result.steps_completed,
            training_seconds=base_seconds + result.seconds,
            metrics=metrics,
        )
    except CanceledBeforeCheckpoint:
        jobs.finish(
            job_id,
            JobState.CANCELED,
            {"reason": "stopped before the first checkpoint"},
            training_seconds=reporter.seconds,
        )
    except (MemoryError, tf.errors.ResourceExhaustedError):
        _fail(
            jobs,
            job_id,
            f"Training ran out of memory at batch size {job.batch_size}. Retry the job with a smaller "
            f"batch size ({max(job.batch_size // 2, 1)}, say); it resumes from its last checkpoint.",
            reporter.seconds,
        )
    except UserError as e:
        _fail(jobs, job_id, str(e), reporter.seconds)
    except Exception:
        ref = secrets.token_hex(3)
        log.exception("job #%s failed (ref %s)", job_id, ref)
        _fail(
            jobs,
            job_id,
            f"Something went wrong in training (ref {ref}). Tell "
            f"{services.settings.operators(mentions=False)} the ref; retrying the job resumes from its "
            "last checkpoint.",
            reporter.seconds,
        )
