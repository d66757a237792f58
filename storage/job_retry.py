"""Retry an ended job as a new job with the same datasets and settings.

    FAILED, STOPPED   resume from the old job's last checkpoint (a copy), when it has one
    CANCELED          start again from the beginning (it had no checkpoint)
    TRY_AGAIN_LATER   queue it again (it never started)

The new job reserves its minutes like any other and may get a smaller batch size (the cure for
"ran out of memory"). Old jobs stay as they ended: their states are final, as in ftc-ml.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

from storage.checkpoints import Checkpoints, latest_step
from storage.db import immediate
from storage.domain import Job, JobState
from storage.errors import UserError
from storage.jobs import JobStore

RETRYABLE = frozenset({JobState.FAILED, JobState.STOPPED, JobState.CANCELED, JobState.TRY_AGAIN_LATER})
RESUMABLE = frozenset({JobState.FAILED, JobState.STOPPED})
# Keys of a job's config that belong to that job, not to its training settings.
OWN_KEYS = ("labels", "plan", "retry_of", "resume_step")


class NotRetryable(UserError):
    """The job is still going, or it succeeded (then it is continued, not retried)."""


def _link_or_copy(src: str, dst: str) -> None:
    """Checkpoint files are written once and never changed in place, so a hard link is a safe copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _refuse(job: Job) -> NotRetryable:
    if job.state == JobState.SUCCEEDED:
        more = f"model {job.model_id}" if job.model_id else "its model"
        return NotRetryable(
            f"Job {job.id} finished every step; there is nothing to retry. To train {more} more, "
            f"continue it (`/train continue model:{job.model_id}` in Discord, "
            f"`fieldlens train continue {job.model_id}` on the command line)."
        )
    return NotRetryable(f"Job {job.id} is still {job.state}; retry it once it has ended, or stop it first.")


def retry_job(
    jobs: JobStore,
    team_id: str,
    job_id: int,
    batch_size: int | None = None,
    max_minutes: int | None = None,
    extra_config: dict[str, object] | None = None,
) -> Job:
    """Create the retry of job `job_id` (QUEUED, or TRY_AGAIN_LATER when the queue is still full).

    `extra_config` adds keys to the new job's config (the bot records who asked, for example).
    """
    old = jobs.get(team_id, job_id)
    if old.state not in RETRYABLE:
        raise _refuse(old)
    names = [jobs.datasets.get_by_id(team_id, i).name for i in old.dataset_ids]
    step = latest_step(old.checkpoint_dir) if old.state in RESUMABLE else None
    config = {k: v for k, v in old.config.items() if k not in OWN_KEYS}
    config |= {**(extra_config or {}), "retry_of": old.id}
    if step is not None:
        config["resume_step"] = step
    description = f"retry of job {old.id}" + (f": {old.description}" if old.description else "")
    staged: Path | None = None
    if step is not None:
        # Copied before the job exists, moved into place under the lock that creates it: no worker can
        # claim the new job before its checkpoint is there.
        jobs.jobs_dir.mkdir(parents=True, exist_ok=True)
        staged = jobs.jobs_dir / f".retry-{old.id}-{secrets.token_hex(4)}"
        source = Checkpoints(old.checkpoint_dir or "").folder
        shutil.copytree(source, staged / source.name, copy_function=_link_or_copy)
    try:
        with immediate(jobs.db):
            new = jobs.create(
                team_id,
                names,
                old.model,
                old.steps,
                batch_size or old.batch_size,
                max_minutes or old.max_minutes,
                description,
                old.from_model_id,
                config,
            )
            if staged is not None and new.state == JobState.QUEUED and new.checkpoint_dir:
                staged.rename(new.checkpoint_dir)
    finally:
        if staged is not None:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(staged)
    return new
