"""Waiting on jobs that real workers run, and checking the ledger after them (tests/trainer)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from storage.domain import Job, JobState
from storage.services import Services


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_final(s: Services, job_id: int, timeout: float = 300) -> Job:
    wait_for(lambda: s.jobs.get("local", job_id).state.is_final, timeout, f"job #{job_id} to end")
    return s.jobs.get("local", job_id)


def states(s: Services, job_id: int) -> list[JobState | None]:
    return [e.state for e in s.jobs.events(job_id, kinds=("state",))]


def balanced(s: Services, team: str = "local") -> bool:
    """The balance is the ledger's sum, and each ended job was charged exactly its whole minutes."""
    entries = s.budget.entries(team)
    for job in s.jobs.list_team(team):
        rows = [e.minutes for e in entries if e.job_id == job.id]
        if job.state == JobState.TRY_AGAIN_LATER:
            assert rows == []
        elif job.state.is_final:
            charged = -sum(rows)
            expected = (
                0
                if job.state in (JobState.FAILED, JobState.CANCELED)
                else min(job.max_minutes, math.ceil(job.training_seconds / 60))
            )
            assert charged == expected, (job.id, job.state, rows, job.training_seconds)
    return s.budget.balance(team) == sum(e.minutes for e in entries)
