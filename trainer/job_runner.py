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

from storage.domain import Job, JobState
from storage.errors import UserError
from storage.jobs import IllegalTransition, JobStore, checkpoint_step
from storage.services import Services, open_services
from storage.settings import Settings

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
        if self.stop and checkpoint_step(self.job.checkpoint_dir) is None:
            raise CanceledBeforeCheckpoint
        return self.stop


class Reporter:
    """The trainer's `on_event`: state RUNNING at start, progress every 2 s, every checkpoint."""

    def __init__(self, jobs: JobStore, job: Job, base_seconds: float) -> None:
        self.jobs, self.job, self.base = jobs, job, base_seconds
        self.last = 0.0
        self.seconds = base_seconds

    def __call__(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "started":
            # A stop requested while preparing leaves the job STOP_REQUESTED.
            with contextlib.suppress(IllegalTransition):
                self.jobs.transition(self.job.id, JobState.RUNNING, {"device": event["device"]})
            self.jobs.progress(self.job.id, "log", {"message": f"training on {event['device']}", **event})
        elif kind == "step":
            self.seconds = self.base + float(event["elapsed_seconds"])
            now = time.monotonic()
            if now - self.last >= PROGRESS_EVERY_SECONDS or event["step"] == event["steps"]:
                self.last = now
                data = {
                    "step": event["step"],
                    "steps": event["steps"],
                    "loss": event["loss"]["total"],
                    "images_per_second": event["images_per_second"],
                    "eta_seconds": event["eta_seconds"],
                    "training_seconds": self.seconds,
                }
                self.jobs.progress(
                    self.job.id,
                    "progress",
                    data,
                    steps_completed=event["step"],
                    training_seconds=self.seconds,
                )
        elif kind == "checkpoint":
            m = event["metrics"]
            train_loss = m.get("train_loss", {})
            data = {
                "step": event["step"],
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
                steps_completed=event["step"],
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

    from trainer.pipeline import export_and_verify, load_data
    from trainer.train import Trainer

    jobs = services.jobs
    job = jobs.get_any(job_id)
    base_seconds = job.training_seconds
    reporter = Reporter(jobs, job, base_seconds)
    watcher = StopWatcher(jobs, job, parent_pid)
    workdir = Path(job.checkpoint_dir or services.settings.home / "jobs" / str(job_id))
    try:
        names = [services.datasets.get_by_id(job.team_id, i).name for i in job.dataset_ids]
        labels, data = load_data(services, job.team_id, names, services.settings.home / "cache")
        config = job_config(job, labels.labels)
        init_weights = None
        if job.from_model_id is not None:
            parent = services.models.get(job.team_id, job.from_model_id)
            init_weights = Path(parent.path) / "model.weights.h5"
            config = config.with_(weights="none")
        watcher()  # a stop while preparing cancels here
        result = Trainer(config, data, workdir, reporter, watcher, init_weights).run()
        seconds = base_seconds + result.seconds
        stopped = result.reason == "stop_requested"
        if stopped:
            jobs.transition(job_id, JobState.STOPPING)
        checkpoint = result.best_checkpoint or result.checkpoint
        assert checkpoint is not None
        out_dir = services.settings.home / "models" / job.team_id / f"job-{job_id}"
        shutil.rmtree(out_dir, ignore_errors=True)  # a half export from an earlier attempt
        manifest = export_and_verify(config, checkpoint, data, out_dir, result, workdir)
        model = services.models.register(
            job.team_id,
            out_dir,
            name=f"job {job_id}: {job.description or '+'.join(names)}"[:100],
            job_id=job_id,
            parent_model_id=job.from_model_id,
        )
        m = manifest["metrics"]
        metrics = {
            "map50_float": m["map50_float"],
            "map50_int8": m["map50_int8"],
            "map50_95_float": m["map50_95_float"],
            "map50_95_int8": m["map50_95_int8"],
            "per_class_ap50": m["int8"]["per_class_ap50"],
            "images_per_second": result.images_per_second,
            "int8_ok": manifest["int8_ok"],
        }
        jobs.finish(
            job_id,
            JobState.STOPPED if stopped else JobState.SUCCEEDED,
            {"reason": result.reason, "model_id": model.id, "verdict": manifest["verdict"]},
            model_id=model.id,
            steps_completed=result.steps_completed,
            training_seconds=seconds,
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
            f"Training ran out of memory at batch size {job.batch_size}. Start it again with a smaller "
            "batch size (half of it, say).",
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
            f"Something went wrong in training (ref {ref}). Its last checkpoint is kept; "
            "tell the FieldLens admins the ref.",
            reporter.seconds,
        )
