"""Jobs whose worker is gone: back to the queue (they resume from their checkpoint), or ended.

release   a worker shutting down hands its jobs back (the attempt does not count)
reap      jobs whose worker has been silent too long (the maintenance scheduler calls it)
recover   one job, decided under the write lock: requeued while it has attempts left, CANCELED
          when a stop was asked before its first checkpoint, else FAILED (its checkpoint kept)
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from storage.checkpoints import latest_step
from storage.db import immediate, marks
from storage.domain import ACTIVE_STATES, JobState
from storage.jobs import JobStore

log = logging.getLogger(__name__)


class JobRecovery:
    def __init__(self, jobs: JobStore, max_attempts: int = 3) -> None:
        self.jobs = jobs
        self.max_attempts = max_attempts

    def release(self, worker_id: str) -> list[int]:
        """A worker shutting down hands its jobs back to the queue (they resume from their checkpoint)."""
        rows = self.jobs.db.execute(
            f"SELECT id FROM jobs WHERE worker_id = ? AND state IN ({marks(ACTIVE_STATES)})",  # noqa: S608
            [worker_id, *ACTIVE_STATES],
        ).fetchall()
        for (job_id,) in rows:
            self.recover(job_id, "its worker shut down", count_attempt=False)
        return [r[0] for r in rows]

    def reap(self, timeout_seconds: float, now: datetime | None = None) -> list[int]:
        """Recover jobs whose worker has been silent for `timeout_seconds`; returns their ids."""
        cutoff_time = (now or datetime.now(UTC)) - timedelta(seconds=timeout_seconds)
        cutoff = cutoff_time.isoformat(timespec="milliseconds")
        rows = self.jobs.db.execute(
            f"SELECT id FROM jobs WHERE state IN ({marks(ACTIVE_STATES)})"  # noqa: S608
            " AND (heartbeat_at IS NULL OR heartbeat_at < ?)",
            [*ACTIVE_STATES, cutoff],
        ).fetchall()
        recovered = []
        for (job_id,) in rows:
            if self.recover(
                job_id, f"its worker stopped responding for {timeout_seconds:g} s", True, cutoff_time
            ):
                recovered.append(job_id)
        return recovered

    def recover(
        self,
        job_id: int,
        why: str,
        count_attempt: bool = True,
        stale_before: datetime | None = None,
        owner: str | None = None,
    ) -> bool:
        """Requeue, cancel or fail an active job; False when it changed meanwhile (checked under the
        lock), or when `owner` is given and no longer owns it."""
        with immediate(self.jobs.db):
            job = self.jobs.get_any(job_id)
            if job.state not in ACTIVE_STATES:
                return False  # finished meanwhile
            if owner is not None and job.worker_id != owner:
                return False  # handed to another worker meanwhile: not `owner`'s to give back
            if stale_before is not None and job.heartbeat_at is not None and job.heartbeat_at >= stale_before:
                return False  # a worker claimed it or beat its heartbeat since the query: it is alive
            # A remote worker keeps its checkpoints in the blob store; its reports say how far it got.
            step = latest_step(job.checkpoint_dir) or self.jobs.last_checkpoint_step(job_id)
            where = f"from its checkpoint at step {step}" if step else "from the start (no checkpoint yet)"
            if job.stop_requested and step is None:
                self.jobs.finish_locked(
                    job, JobState.CANCELED, {"reason": f"{why} before its first checkpoint"}
                )
            elif job.attempts < self.max_attempts or not count_attempt:
                columns: dict[str, object] = {"worker_id": None, "heartbeat_at": None}
                if not count_attempt:
                    columns["attempts"] = max(job.attempts - 1, 0)
                self.jobs.requeue_locked(job, f"Requeued: {why}; it resumes {where}.", columns)
                log.warning("job #%s requeued: %s", job_id, why)
            else:
                kept = f" Its checkpoint at step {step} is kept in {job.checkpoint_dir}." if step else ""
                self.jobs.finish_locked(
                    job,
                    JobState.FAILED,
                    {"reason": why},
                    {"error": f"The job was started {job.attempts} times and each time {why}.{kept}"},
                )
                log.error("job #%s failed: %s", job_id, why)
        return True
