"""Rows of the jobs table <-> `Job`, and the columns a state change may set."""

from __future__ import annotations

import json

from storage.db import parse_time
from storage.domain import Job, JobState

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


def row_to_job(row: dict, dataset_ids: list[int]) -> Job:
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
        model_id=row["model_id"],
        checkpoint_dir=row["checkpoint_dir"],
        worker_id=row["worker_id"],
        heartbeat_at=parse_time(row["heartbeat_at"]),
        config=json.loads(row["config"]),
        attempts=row["attempts"],
        stop_requested=bool(row["stop_requested"]),
    )


def set_clause(columns: dict[str, object]) -> str:
    """`a = ?, b = ?` for an UPDATE; only known columns (their names go into the SQL text)."""
    unknown = set(columns) - COLUMNS
    if unknown:
        raise ValueError(f"not job columns: {sorted(unknown)}")
    return ", ".join(f"{k} = ?" for k in columns)


def values(columns: dict[str, object]) -> list[object]:
    """The parameters for `set_clause`; dicts are stored as JSON."""
    return [json.dumps(v, default=float) if isinstance(v, dict) else v for v in columns.values()]
