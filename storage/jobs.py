"""Training jobs: queue, claim, state changes, progress events, stop, and recovery of dead workers.

The database is the only channel between the bot, the CLI and the workers, so workers on other
machines can take part through any system that gives them these calls:

    create          QUEUED (budget reserved) or TRY_AGAIN_LATER (queue full, nothing reserved)
    claim           the oldest QUEUED job -> PREPARING, under the write lock: no two workers share a job
    heartbeat       the worker's "still alive" for its jobs
    request_stop    QUEUED -> CANCELED at once; otherwise STOP_REQUESTED, seen by the trainer within a step
    finish          a final state and the budget refund, in one transaction
    reap            jobs whose worker went silent: back to QUEUED (resume from the checkpoint) or FAILED

Every state change is a compare-and-set on the current state and writes a job event.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from storage.budget import Budget, charged_minutes
from storage.datasets import DatasetStore
from storage.db import immediate, parse_time, utcnow
from storage.domain import ACTIVE_STATES, FINAL_STATES, TRANSITIONS, Job, JobEvent, JobState
from storage.errors import DatasetLabelsDiffer, NotFound, OutOfRange, UserError
from storage.models import ModelStore
from storage.plan import CHECKPOINT_EVERY, DEFAULT_IMAGES_PER_SECOND, DEFAULT_MODEL, MODELS, Plan, make_plan

log = logging.getLogger(__name__)

MAX_STEPS = 200_000
MAX_BATCH = 512
REFUNDED_IN_FULL = {JobState.FAILED, JobState.CANCELED}
# Columns a state change or progress report may set (names go into SQL text, so they are checked).
COLUMNS = {
    "state",
    "updated_at",
    "steps_completed",
    "training_seconds",
    "metrics",
    "error",
    "model_id",
    "worker_id",
    "heartbeat_at",
    "attempts",
}


class IllegalTransition(RuntimeError):
    """A job was asked to move to a state its current state cannot reach."""


class JobEnded(UserError):
    """The job has already ended, so it cannot be stopped."""


def _row_to_job(row: dict, dataset_ids: list[int]) -> Job:
    return Job(
        id=row["id"],
        team_id=row["team_id"],
        state=JobState(row["state"]),
        model=row["model"],
        steps=row["steps"],
        batch_size=row["batch_size"],
        max_minutes=row["max_minutes"],
        dataset_ids=dataset_ids,
        created_at=parse_time(row["created_at"]),  # type: ignore[arg-type]
        updated_at=parse_time(row["updated_at"]),  # type: ignore[arg-type]
        description=row["description"],
        steps_completed=row["steps_completed"],
        training_seconds=row["training_seconds"],
        metrics=json.loads(row["metrics"]),
        error=row["error"],
        from_model_id=row["from_model_id"],
        val_dataset_id=row["val_dataset_id"],
        model_id=row["model_id"],
        checkpoint_dir=row["checkpoint_dir"],
        worker_id=row["worker_id"],
        heartbeat_at=parse_time(row["heartbeat_at"]),
        config=json.loads(row["config"]),
        attempts=row["attempts"],
        stop_requested=bool(row["stop_requested"]),
    )


def _marks(values: object) -> str:
    """Placeholders for an IN list; values always travel as parameters, never in the SQL text."""
    return ",".join("?" * len(values))  # type: ignore[arg-type]


def _columns(columns: dict[str, object]) -> str:
    unknown = set(columns) - COLUMNS
    if unknown:
        raise ValueError(f"not job columns: {sorted(unknown)}")
    return ", ".join(f"{k} = ?" for k in columns)


def _values(columns: dict[str, object]) -> list[object]:
    return [json.dumps(v, default=float) if isinstance(v, dict) else v for v in columns.values()]


def checkpoint_step(checkpoint_dir: str | None) -> int | None:
    """The step of the job's latest checkpoint, or None (reads the trainer's latest.json)."""
    if not checkpoint_dir:
        return None
    pointer = Path(checkpoint_dir) / "checkpoints" / "latest.json"
    try:
        data = json.loads(pointer.read_text())
    except (OSError, ValueError):
        return None
    return int(data["step"]) if (pointer.parent / data["path"]).exists() else None


class JobStore:
    def __init__(
        self,
        db: sqlite_utils.Database,
        datasets: DatasetStore,
        models: ModelStore,
        budget: Budget,
        jobs_dir: Path,
        max_queued_per_team: int = 3,
        max_queued_total: int = 50,
        max_minutes: int = 24 * 60,
        max_attempts: int = 3,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.models = models
        self.budget = budget
        self.jobs_dir = Path(jobs_dir)
        self.max_queued_per_team = max_queued_per_team
        self.max_queued_total = max_queued_total
        self.max_minutes = max_minutes
        self.max_attempts = max_attempts

    # -- planning and creating -------------------------------------------------------------------

    def images_per_second(self, model: str) -> float:
        """Measured on this machine by the last finished job of `model`, else the benchmark figure."""
        row = self.db.execute(
            "SELECT json_extract(metrics, '$.images_per_second') FROM jobs WHERE model = ? AND state IN"
            " ('SUCCEEDED', 'STOPPED') AND json_extract(metrics, '$.images_per_second') > 0"
            " ORDER BY id DESC LIMIT 1",
            [model],
        ).fetchone()
        return float(row[0]) if row else DEFAULT_IMAGES_PER_SECOND.get(model, 20.0)

    def plan(
        self,
        team_id: str,
        dataset_names: list[str],
        model: str = DEFAULT_MODEL,
        steps: int = 1000,
        batch_size: int = 32,
        max_minutes: int = 60,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> tuple[Plan, list[int], tuple[str, ...]]:
        """Check the arguments and datasets; return the plan, the dataset ids and the labels."""
        if model not in MODELS:
            raise OutOfRange(f"Unknown model {model!r}. Choose one of: {', '.join(MODELS)}.")
        if not 1 <= steps <= MAX_STEPS:
            raise OutOfRange(f"Steps must be between 1 and {MAX_STEPS}, not {steps}.")
        if not 1 <= batch_size <= MAX_BATCH:
            raise OutOfRange(f"Batch size must be between 1 and {MAX_BATCH}, not {batch_size}.")
        if not 1 <= max_minutes <= self.max_minutes:
            raise OutOfRange(f"Max minutes must be between 1 and {self.max_minutes}, not {max_minutes}.")
        if not dataset_names:
            raise OutOfRange("Name at least one dataset to train on.")
        datasets = [self.datasets.get(team_id, name) for name in dict.fromkeys(dataset_names)]
        labels = datasets[0].label_map.labels
        for d in datasets[1:]:
            if d.label_map.labels != labels:
                raise DatasetLabelsDiffer(
                    f"Datasets {datasets[0].name!r} and {d.name!r} have different labels; train on "
                    "datasets with identical labels, or combine them first."
                )
        ids = [d.id for d in datasets]
        counts = dict(
            self.db.execute(
                f"SELECT split, COUNT(*) FROM images WHERE dataset_id IN ({_marks(ids)})"  # noqa: S608
                " GROUP BY split",
                ids,
            ).fetchall()
        )
        if not counts.get("train"):
            raise UserError("These datasets have no training images. Upload more images first.")
        p = make_plan(
            steps,
            batch_size,
            counts.get("train", 0),
            counts.get("val", 0),
            self.images_per_second(model),
            max_minutes,
            checkpoint_every,
        )
        return p, ids, labels

    def create(
        self,
        team_id: str,
        dataset_names: list[str],
        model: str = DEFAULT_MODEL,
        steps: int = 1000,
        batch_size: int = 32,
        max_minutes: int = 60,
        description: str = "",
        from_model_id: int | None = None,
        config: dict[str, object] | None = None,
    ) -> Job:
        """Queue a job (reserving `max_minutes`) or record it as TRY_AGAIN_LATER when the queue is full.

        `config` holds training settings beyond the columns (input size, width, weights...).
        """
        config = dict(config or {})
        if from_model_id is not None:
            parent = self.models.get(team_id, from_model_id)
            manifest = json.loads((Path(parent.path) / "manifest.json").read_text())
            model = manifest["model"]
            for key in ("input_size", "alpha", "head_channels"):
                config[key] = manifest["config"][key]
        every = int(config.get("checkpoint_every", CHECKPOINT_EVERY))  # type: ignore[call-overload]
        p, ids, labels = self.plan(team_id, dataset_names, model, steps, batch_size, max_minutes, every)
        if from_model_id is not None and list(labels) != parent.labels:
            raise DatasetLabelsDiffer(
                f"Model #{from_model_id} knows the labels {', '.join(parent.labels)} but these datasets "
                f"have {', '.join(labels)}. Continue a model only on datasets with the same labels."
            )
        description = description.strip()[:200]
        with immediate(self.db):
            self.budget.ensure_team(team_id)
            queued_team, queued_all = self.db.execute(
                "SELECT COUNT(*) FILTER (WHERE team_id = ?), COUNT(*) FROM jobs WHERE state = 'QUEUED'",
                [team_id],
            ).fetchone()
            full = queued_team >= self.max_queued_per_team or queued_all >= self.max_queued_total
            state = JobState.TRY_AGAIN_LATER if full else JobState.QUEUED
            now = utcnow()
            job_id = self.db.execute(
                "INSERT INTO jobs (team_id, state, model, steps, batch_size, max_minutes, description,"
                " config, created_at, updated_at, from_model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    team_id,
                    state,
                    model,
                    steps,
                    p.batch_size,
                    max_minutes,
                    description,
                    json.dumps({**config, "labels": list(labels), "plan": p.to_json()}),
                    now,
                    now,
                    from_model_id,
                ],
            ).lastrowid
            assert job_id is not None
            self.db.execute(
                "UPDATE jobs SET checkpoint_dir = ? WHERE id = ?", [str(self.jobs_dir / str(job_id)), job_id]
            )
            self.db.conn.executemany(
                "INSERT INTO job_datasets (job_id, dataset_id) VALUES (?, ?)", [(job_id, i) for i in ids]
            )
            data: dict[str, object] = {"plan": p.to_json()}
            if full:
                data["reason"] = (
                    f"The queue is full ({queued_team} of your team's jobs and {queued_all} in all are "
                    "waiting). Start the job again when one of them has finished."
                )
            else:
                self.budget.reserve(team_id, job_id, max_minutes)
            self._event(job_id, "state", state, data)
        return self.get(team_id, job_id)

    # -- reading ---------------------------------------------------------------------------------

    def _jobs(self, where: str, args: list[object]) -> list[Job]:
        """Jobs matching `where`, with their dataset ids: two queries however many jobs."""
        rows = list(self.db.query(f"SELECT * FROM jobs WHERE {where}", args))  # noqa: S608
        ids = [r["id"] for r in rows]
        datasets: dict[int, list[int]] = {i: [] for i in ids}
        for job_id, dataset_id in self.db.execute(
            f"SELECT job_id, dataset_id FROM job_datasets WHERE job_id IN ({_marks(ids)})"  # noqa: S608
            " ORDER BY rowid",
            ids,
        ):
            datasets[job_id].append(dataset_id)
        return [_row_to_job(r, datasets[r["id"]]) for r in rows]

    def _job(self, where: str, args: list[object]) -> Job | None:
        found = self._jobs(where, args)
        return found[0] if found else None

    def get(self, team_id: str, job_id: int) -> Job:
        job = self._job("team_id = ? AND id = ?", [team_id, job_id])
        if job is None:
            raise NotFound(f"No job #{job_id} in this team. `job list` shows your jobs.")
        return job

    def get_any(self, job_id: int) -> Job:
        """For workers, which serve every team."""
        job = self._job("id = ?", [job_id])
        if job is None:
            raise NotFound(f"No job #{job_id}.")
        return job

    def list_team(self, team_id: str, limit: int = 50) -> list[Job]:
        return self._jobs("team_id = ? ORDER BY id DESC LIMIT ?", [team_id, limit])

    def events(self, job_id: int, after: int = 0, kinds: tuple[str, ...] | None = None) -> list[JobEvent]:
        sql = "SELECT * FROM job_events WHERE job_id = ? AND id > ?"
        args: list[object] = [job_id, after]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        return [
            JobEvent(
                r["id"],
                r["job_id"],
                parse_time(r["at"]),  # type: ignore[arg-type]
                r["kind"],
                JobState(r["state"]) if r["state"] else None,
                json.loads(r["data"]),
            )
            for r in self.db.query(sql + " ORDER BY id", args)
        ]

    def last_event_id(self, job_id: int) -> int:
        row = self.db.execute("SELECT MAX(id) FROM job_events WHERE job_id = ?", [job_id]).fetchone()
        return int(row[0] or 0)

    def last_progress(self, job_id: int) -> dict[str, object]:
        row = self.db.execute(
            "SELECT data FROM job_events WHERE job_id = ? AND kind = 'progress' ORDER BY id DESC LIMIT 1",
            [job_id],
        ).fetchone()
        return json.loads(row[0]) if row else {}

    def state_of(self, job_id: int) -> tuple[JobState, bool]:
        """(state, stop requested): the cheap query a trainer polls."""
        row = self.db.execute("SELECT state, stop_requested FROM jobs WHERE id = ?", [job_id]).fetchone()
        if row is None:
            raise NotFound(f"No job #{job_id}.")
        return JobState(row[0]), bool(row[1])

    # -- state changes ---------------------------------------------------------------------------

    def _event(self, job_id: int, kind: str, state: JobState | None, data: dict[str, object]) -> None:
        self.db.execute(
            "INSERT INTO job_events (job_id, at, kind, state, data) VALUES (?, ?, ?, ?, ?)",
            [job_id, utcnow(), kind, state, json.dumps(data, default=float)],
        )

    def transition(
        self, job_id: int, to: JobState, data: dict[str, object] | None = None, **columns: object
    ) -> Job:
        """Move a job to `to` if its current state allows it; raise IllegalTransition otherwise."""
        with immediate(self.db):
            state, _ = self.state_of(job_id)
            if to not in TRANSITIONS[state]:
                raise IllegalTransition(f"job #{job_id} cannot go from {state} to {to}")
            self._set(job_id, state, to, columns)
            self._event(job_id, "state", to, data or {})
        return self.get_any(job_id)

    def _set(self, job_id: int, expected: JobState, to: JobState, columns: dict[str, object]) -> None:
        columns = {**columns, "state": str(to), "updated_at": utcnow()}
        assignments = _columns(columns)
        changed = self.db.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ? AND state = ?",  # noqa: S608
            [*_values(columns), job_id, expected],
        ).rowcount
        if changed != 1:
            raise IllegalTransition(f"job #{job_id} is no longer {expected}")

    def claim(self, worker_id: str) -> Job | None:
        """Take the oldest QUEUED job (PREPARING, owned by `worker_id`), or None when there is none."""
        with immediate(self.db):
            row = self.db.execute("SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            now = utcnow()
            self.db.execute(
                "UPDATE jobs SET state = 'PREPARING', worker_id = ?, heartbeat_at = ?, updated_at = ?,"
                " attempts = attempts + 1 WHERE id = ? AND state = 'QUEUED'",
                [worker_id, now, now, row[0]],
            )
            self._event(row[0], "state", JobState.PREPARING, {"worker": worker_id})
        return self.get_any(row[0])

    def heartbeat(self, worker_id: str, job_ids: list[int]) -> None:
        if not job_ids:
            return
        with immediate(self.db):
            self.db.execute(
                f"UPDATE jobs SET heartbeat_at = ? WHERE worker_id = ? AND id IN ({_marks(job_ids)})",  # noqa: S608
                [utcnow(), worker_id, *job_ids],
            )

    def progress(self, job_id: int, kind: str, data: dict[str, object], **columns: object) -> None:
        """Record a progress or checkpoint event and the job's latest figures."""
        with immediate(self.db):
            if columns:
                assignments = _columns(columns)
                self.db.execute(
                    f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608
                    [*_values(columns), utcnow(), job_id],
                )
            self._event(job_id, kind, None, data)

    def request_stop(self, team_id: str, job_id: int) -> Job:
        """Stop a job: a queued one is canceled at once; a running one stops at its next step."""
        with immediate(self.db):
            job = self.get(team_id, job_id)
            if job.state.is_final:
                raise JobEnded(f"Job #{job_id} has already ended ({job.state}); there is nothing to stop.")
            if job.state == JobState.QUEUED:
                self._finish(job, JobState.CANCELED, {"reason": "stopped before it started"})
            elif job.state in (JobState.PREPARING, JobState.RUNNING):
                self.db.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", [job_id])
                self._set(job_id, job.state, JobState.STOP_REQUESTED, {})
                self._event(job_id, "state", JobState.STOP_REQUESTED, {})
            # STOP_REQUESTED / STOPPING: already on its way
        return self.get(team_id, job_id)

    def finish(
        self, job_id: int, to: JobState, data: dict[str, object] | None = None, **columns: object
    ) -> Job:
        """Move a job to a final state and refund its unused minutes, in one transaction."""
        assert to in FINAL_STATES
        with immediate(self.db):
            job = self.get_any(job_id)
            if to not in TRANSITIONS[job.state]:
                raise IllegalTransition(f"job #{job_id} cannot go from {job.state} to {to}")
            self._finish(job, to, data or {}, columns)
        return self.get_any(job_id)

    def _finish(
        self, job: Job, to: JobState, data: dict[str, object], columns: dict[str, object] | None = None
    ) -> None:
        columns = dict(columns or {})
        seconds = float(columns.get("training_seconds", job.training_seconds))  # type: ignore[arg-type]
        used = 0 if to in REFUNDED_IN_FULL else charged_minutes(seconds, job.max_minutes)
        self._set(job.id, job.state, to, columns)
        self.budget.settle(job.team_id, job.id, job.max_minutes, used)
        self._event(job.id, "state", to, {**data, "charged_minutes": used})

    # -- recovery --------------------------------------------------------------------------------

    def release(self, worker_id: str) -> list[int]:
        """A worker shutting down hands its jobs back to the queue (they resume from their checkpoint)."""
        rows = self.db.execute(
            f"SELECT id FROM jobs WHERE worker_id = ? AND state IN ({_marks(ACTIVE_STATES)})",  # noqa: S608
            [worker_id, *ACTIVE_STATES],
        ).fetchall()
        for (job_id,) in rows:
            self._recover(job_id, "its worker shut down", count_attempt=False)
        return [r[0] for r in rows]

    def reap(self, timeout_seconds: float, now: datetime | None = None) -> list[int]:
        """Recover jobs whose worker has been silent for `timeout_seconds`; returns their ids."""
        cutoff_time = (now or datetime.now(UTC)) - timedelta(seconds=timeout_seconds)
        cutoff = cutoff_time.isoformat(timespec="milliseconds")
        rows = self.db.execute(
            f"SELECT id FROM jobs WHERE state IN ({_marks(ACTIVE_STATES)})"  # noqa: S608
            " AND (heartbeat_at IS NULL OR heartbeat_at < ?)",
            [*ACTIVE_STATES, cutoff],
        ).fetchall()
        recovered = []
        for (job_id,) in rows:
            if self._recover(
                job_id, f"its worker stopped responding for {timeout_seconds:g} s", True, cutoff_time
            ):
                recovered.append(job_id)
        return recovered

    def _recover(
        self, job_id: int, why: str, count_attempt: bool = True, stale_before: datetime | None = None
    ) -> bool:
        """Requeue, cancel or fail an active job; False when it changed meanwhile (checked under the lock)."""
        with immediate(self.db):
            job = self.get_any(job_id)
            if job.state not in ACTIVE_STATES:
                return False  # finished meanwhile
            if stale_before is not None and job.heartbeat_at is not None and job.heartbeat_at >= stale_before:
                return False  # a worker claimed it or beat its heartbeat since the query: it is alive
            step = checkpoint_step(job.checkpoint_dir)
            where = f"from its checkpoint at step {step}" if step else "from the start (no checkpoint yet)"
            if job.stop_requested and step is None:
                self._finish(job, JobState.CANCELED, {"reason": f"{why} before its first checkpoint"})
            elif job.attempts < self.max_attempts or not count_attempt:
                columns: dict[str, object] = {"worker_id": None, "heartbeat_at": None}
                if not count_attempt:
                    columns["attempts"] = max(job.attempts - 1, 0)
                self._set(job_id, job.state, JobState.QUEUED, columns)
                self._event(
                    job_id, "state", JobState.QUEUED, {"reason": f"Requeued: {why}; it resumes {where}."}
                )
                log.warning("job #%s requeued: %s", job_id, why)
            else:
                kept = f" Its checkpoint at step {step} is kept in {job.checkpoint_dir}." if step else ""
                self._finish(
                    job,
                    JobState.FAILED,
                    {"reason": why},
                    {"error": f"The job was started {job.attempts} times and each time {why}.{kept}"},
                )
                log.error("job #%s failed: %s", job_id, why)
        return True


def job_json(job: Job, progress: dict[str, object] | None = None) -> dict[str, object]:
    """A job as the CLI's --json and the bot show it."""
    return {
        "id": job.id,
        "team": job.team_id,
        "state": str(job.state),
        "model": job.model,
        "datasets": job.dataset_ids,
        "description": job.description,
        "steps": job.steps,
        "batch_size": job.batch_size,
        "max_minutes": job.max_minutes,
        "steps_completed": job.steps_completed,
        "training_seconds": round(job.training_seconds, 1),
        "metrics": job.metrics,
        "progress": progress or {},
        "plan": job.config.get("plan", {}),
        "error": job.error,
        "model_id": job.model_id,
        "from_model_id": job.from_model_id,
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }
