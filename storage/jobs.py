"""Training jobs: queue, claim, state changes, progress events and stop.

The database is the only channel between the bot, the CLI and the workers, so workers on other
machines can take part through any system that gives them these calls:

    create          QUEUED (budget reserved) or TRY_AGAIN_LATER (queue full, nothing reserved)
    claim           the oldest QUEUED job -> PREPARING, under the write lock: no two workers share a job
    heartbeat       the worker's "still alive" for its jobs
    request_stop    QUEUED -> CANCELED at once; otherwise STOP_REQUESTED, seen by the trainer within a step
    finish          a final state and the budget refund, in one transaction

Every state change is a compare-and-set on the current state and writes a job event. Planning a
job is storage/planning.py's; jobs of dead workers are recovered by storage/job_recovery.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import sqlite_utils

from storage.budget import Budget, charged_minutes
from storage.datasets import DatasetStore
from storage.db import immediate, marks, parse_time, utcnow
from storage.domain import ACTIVE_STATES, FINAL_STATES, TRANSITIONS, Job, JobEvent, JobState
from storage.errors import DatasetLabelsDiffer, NotFound, UserError
from storage.job_rows import row_to_job, set_clause, values
from storage.model_folder import ModelFolder
from storage.models import ModelStore
from storage.plan import CHECKPOINT_EVERY, DEFAULT_MODEL
from storage.planning import JobPlanner

log = logging.getLogger(__name__)

REFUNDED_IN_FULL = {JobState.FAILED, JobState.CANCELED}


class IllegalTransition(RuntimeError):
    """A job was asked to move to a state its current state cannot reach."""


class JobEnded(UserError):
    """The job has already ended, so it cannot be stopped."""


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
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.models = models
        self.budget = budget
        self.jobs_dir = Path(jobs_dir)
        self.max_queued_per_team = max_queued_per_team
        self.max_queued_total = max_queued_total
        self.max_minutes = max_minutes
        self.planner = JobPlanner(db, datasets, max_minutes)
        self.plan = self.planner.plan  # check arguments and datasets; (plan, dataset ids, labels)

    # -- planning and creating -------------------------------------------------------------------

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
        parent = self.models.get(team_id, from_model_id) if from_model_id is not None else None
        if parent is not None:
            manifest = ModelFolder(parent.path).manifest()
            model = manifest.model  # a continued model keeps its architecture and input
            for key in ("input_size", "alpha", "head_channels"):
                config[key] = manifest.config[key]
        every = int(config.get("checkpoint_every", CHECKPOINT_EVERY))  # type: ignore[call-overload]
        p, ids, labels = self.planner.plan(
            team_id, dataset_names, model, steps, batch_size, max_minutes, every
        )
        if parent is not None and list(labels) != parent.labels:
            raise DatasetLabelsDiffer(
                f"Model {from_model_id} knows the labels {', '.join(parent.labels)} but these datasets "
                f"have {', '.join(labels)}. Continue a model only on datasets with the same labels."
            )
        row = {
            "team_id": team_id,
            "model": model,
            "steps": steps,
            "batch_size": p.batch_size,
            "max_minutes": max_minutes,
            "description": description.strip()[:200],
            "config": json.dumps({**config, "labels": list(labels), "plan": p.to_json()}),
            "from_model_id": from_model_id,
        }
        with immediate(self.db):
            self.budget.ensure_team(team_id)
            full = self._queue_full(team_id)
            job_id = self._insert(row, JobState.TRY_AGAIN_LATER if full else JobState.QUEUED, ids)
            data: dict[str, object] = {"plan": p.to_json()}
            if full:
                data["reason"] = full
            else:
                self.budget.reserve(team_id, job_id, max_minutes)
            self._event(job_id, "state", JobState.TRY_AGAIN_LATER if full else JobState.QUEUED, data)
        return self.get(team_id, job_id)

    def _queue_full(self, team_id: str) -> str | None:
        """Why the queue takes no more jobs of this team now, or None."""
        queued_team, queued_all = self.db.execute(
            "SELECT COUNT(*) FILTER (WHERE team_id = ?), COUNT(*) FROM jobs WHERE state = 'QUEUED'",
            [team_id],
        ).fetchone()
        if queued_team < self.max_queued_per_team and queued_all < self.max_queued_total:
            return None
        return (
            f"The queue is full ({queued_team} of your team's jobs and {queued_all} in all are "
            "waiting). Retry the job when one of them has finished."
        )

    def _insert(self, row: dict[str, object], state: JobState, dataset_ids: list[int]) -> int:
        """Write the job's row, its folder and its datasets; returns its id."""
        now = utcnow()
        columns = {**row, "state": state, "created_at": now, "updated_at": now}
        names = ", ".join(columns)
        job_id = self.db.execute(
            f"INSERT INTO jobs ({names}) VALUES ({marks(columns)})",  # noqa: S608 - names are ours
            list(columns.values()),
        ).lastrowid
        assert job_id is not None
        self.db.execute(
            "UPDATE jobs SET checkpoint_dir = ? WHERE id = ?", [str(self.jobs_dir / str(job_id)), job_id]
        )
        self.db.conn.executemany(
            "INSERT INTO job_datasets (job_id, dataset_id) VALUES (?, ?)", [(job_id, i) for i in dataset_ids]
        )
        return job_id

    # -- reading ---------------------------------------------------------------------------------

    def _jobs(self, where: str, args: list[object]) -> list[Job]:
        """Jobs matching `where`, with their dataset ids: two queries however many jobs."""
        rows = list(self.db.query(f"SELECT * FROM jobs WHERE {where}", args))  # noqa: S608
        ids = [r["id"] for r in rows]
        datasets: dict[int, list[int]] = {i: [] for i in ids}
        for job_id, dataset_id in self.db.execute(
            f"SELECT job_id, dataset_id FROM job_datasets WHERE job_id IN ({marks(ids)})"  # noqa: S608
            " ORDER BY rowid",
            ids,
        ):
            datasets[job_id].append(dataset_id)
        return [row_to_job(r, datasets[r["id"]]) for r in rows]

    def _job(self, where: str, args: list[object]) -> Job | None:
        found = self._jobs(where, args)
        return found[0] if found else None

    def get(self, team_id: str, job_id: int) -> Job:
        job = self._job("team_id = ? AND id = ?", [team_id, job_id])
        if job is None:
            raise NotFound(
                f"No job {job_id} in this team. See its jobs with `/train list` "
                "(`fieldlens train list` on the command line)."
            )
        return job

    def get_any(self, job_id: int) -> Job:
        """For workers, which serve every team."""
        job = self._job("id = ?", [job_id])
        if job is None:
            raise NotFound(f"No job #{job_id}.")
        return job

    def list_team(self, team_id: str, limit: int = 50) -> list[Job]:
        return self._jobs("team_id = ? ORDER BY id DESC LIMIT ?", [team_id, limit])

    def queued(self) -> list[Job]:
        """Every team's QUEUED jobs, oldest first."""
        return self._jobs("state = 'QUEUED' ORDER BY id", [])

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
        assignments = set_clause(columns)
        changed = self.db.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ? AND state = ?",  # noqa: S608
            [*values(columns), job_id, expected],
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

    def claim_job(self, job_id: int, worker_id: str) -> Job | None:
        """Take job `job_id` if it is still QUEUED (a remote worker got its task); None otherwise."""
        with immediate(self.db):
            now = utcnow()
            changed = self.db.execute(
                "UPDATE jobs SET state = 'PREPARING', worker_id = ?, heartbeat_at = ?, updated_at = ?,"
                " attempts = attempts + 1 WHERE id = ? AND state = 'QUEUED'",
                [worker_id, now, now, job_id],
            ).rowcount
            if changed != 1:
                return None
            self._event(job_id, "state", JobState.PREPARING, {"worker": worker_id})
        return self.get_any(job_id)

    def owned_by(self, job_id: int, worker_id: str) -> bool:
        """Whether `worker_id` holds the job now (reports of any other worker are dropped)."""
        row = self.db.execute("SELECT worker_id, state FROM jobs WHERE id = ?", [job_id]).fetchone()
        return row is not None and row[0] == worker_id and JobState(row[1]) in ACTIVE_STATES

    def active_by_worker(self) -> dict[str, int]:
        """Worker id -> the job it holds now (what `fieldlens worker list` shows)."""
        rows = self.db.execute(
            "SELECT worker_id, id FROM jobs WHERE worker_id IS NOT NULL"  # noqa: S608 - placeholders only
            f" AND state IN ({marks(ACTIVE_STATES)})",
            sorted(ACTIVE_STATES),
        ).fetchall()
        return {worker: job_id for worker, job_id in rows}

    def queued_generation(self, job_id: int) -> int:
        """The id of the event that last queued the job: one number per time it entered the queue."""
        row = self.db.execute(
            "SELECT MAX(id) FROM job_events WHERE job_id = ? AND kind = 'state' AND state = 'QUEUED'",
            [job_id],
        ).fetchone()
        return int(row[0] or 0)

    def last_checkpoint_step(self, job_id: int) -> int | None:
        """The step of the job's last reported checkpoint (a remote worker keeps the files)."""
        row = self.db.execute(
            "SELECT json_extract(data, '$.step') FROM job_events WHERE job_id = ? AND kind = 'checkpoint'"
            " ORDER BY id DESC LIMIT 1",
            [job_id],
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def heartbeat(self, worker_id: str, job_ids: list[int]) -> None:
        if not job_ids:
            return
        with immediate(self.db):
            self.db.execute(
                f"UPDATE jobs SET heartbeat_at = ? WHERE worker_id = ? AND id IN ({marks(job_ids)})",  # noqa: S608
                [utcnow(), worker_id, *job_ids],
            )

    def progress(self, job_id: int, kind: str, data: dict[str, object], **columns: object) -> None:
        """Record a progress or checkpoint event and the job's latest figures."""
        with immediate(self.db):
            if columns:
                assignments = set_clause(columns)
                self.db.execute(
                    f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608
                    [*values(columns), utcnow(), job_id],
                )
            self._event(job_id, kind, None, data)

    def request_stop(self, team_id: str, job_id: int) -> Job:
        """Stop a job: a queued one is canceled at once; a running one stops at its next step."""
        with immediate(self.db):
            job = self.get(team_id, job_id)
            if job.state.is_final:
                raise JobEnded(f"Job {job_id} has already ended ({job.state}); there is nothing to stop.")
            if job.state == JobState.QUEUED:
                self.finish_locked(job, JobState.CANCELED, {"reason": "stopped before it started"})
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
            self.finish_locked(job, to, data or {}, columns)
        return self.get_any(job_id)

    def finish_locked(
        self, job: Job, to: JobState, data: dict[str, object], columns: dict[str, object] | None = None
    ) -> None:
        columns = dict(columns or {})
        seconds = float(columns.get("training_seconds", job.training_seconds))  # type: ignore[arg-type]
        used = 0 if to in REFUNDED_IN_FULL else charged_minutes(seconds, job.max_minutes)
        self._set(job.id, job.state, to, columns)
        self.budget.settle(job.team_id, job.id, job.max_minutes, used)
        self._event(job.id, "state", to, {**data, "charged_minutes": used})

    def requeue_locked(self, job: Job, reason: str, columns: dict[str, object]) -> None:
        """Back to QUEUED, to resume from its checkpoint (call inside `immediate`)."""
        self._set(job.id, job.state, JobState.QUEUED, columns)
        self._event(job.id, "state", JobState.QUEUED, {"reason": reason})
