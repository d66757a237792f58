"""Training-minute budgets. Every movement is a ledger row; a balance is the sum of its team's rows.

initial          +team_minutes, once, when the team first appears
grant            +N by an admin
reserve job N    -max_minutes when the job is queued
refund job N     +unused minutes when the job ends (all of them if it failed or was canceled)
reset YYYY-MM    tops the balance up to team_minutes on the configured day of the month
"""

from __future__ import annotations

import math
from datetime import datetime

import sqlite_utils

from storage.db import ensure_team, immediate, parse_time, utcnow
from storage.domain import LedgerEntry
from storage.errors import OutOfRange, UserError


class BudgetExhausted(UserError):
    """A job would use more training minutes than the team has left."""


def _time(value: str) -> datetime:
    parsed = parse_time(value)
    assert parsed is not None
    return parsed


def charged_minutes(training_seconds: float, max_minutes: int) -> int:
    """Training time is charged in whole minutes, rounded up, never more than was reserved."""
    return min(max_minutes, math.ceil(max(training_seconds, 0.0) / 60))


class Budget:
    def __init__(self, db: sqlite_utils.Database, team_minutes: int) -> None:
        self.db = db
        self.team_minutes = team_minutes

    def ensure_team(self, team_id: str, name: str = "") -> None:
        """Create the team if needed and credit its starting minutes exactly once."""
        if self._credited(team_id):  # the common case: a read, no write lock
            return
        with immediate(self.db):
            ensure_team(self.db, team_id, name)
            if not self.db.execute(
                "SELECT 1 FROM ledger WHERE team_id = ? AND reason = 'initial'", [team_id]
            ).fetchone():
                self._add(team_id, self.team_minutes, "initial")

    def _credited(self, team_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM ledger WHERE team_id = ? AND reason = 'initial'", [team_id])
        return row.fetchone() is not None

    def balance(self, team_id: str) -> float:
        self.ensure_team(team_id)
        row = self.db.execute("SELECT COALESCE(SUM(minutes), 0) FROM ledger WHERE team_id = ?", [team_id])
        return float(row.fetchone()[0])

    def entries(self, team_id: str) -> list[LedgerEntry]:
        self.ensure_team(team_id)
        return [
            LedgerEntry(
                r["id"],
                r["team_id"],
                _time(r["at"]),
                r["minutes"],
                r["reason"],
                r["job_id"],
            )
            for r in self.db.query("SELECT * FROM ledger WHERE team_id = ? ORDER BY id", [team_id])
        ]

    def grant(self, team_id: str, minutes: int, reason: str = "") -> float:
        if not 1 <= minutes <= 100_000:
            raise OutOfRange(f"Grant between 1 and 100000 minutes, not {minutes}.")
        with immediate(self.db):
            self.ensure_team(team_id)
            self._add(team_id, minutes, f"grant{': ' + reason if reason else ''}")
        return self.balance(team_id)

    def reserve(self, team_id: str, job_id: int, minutes: int) -> None:
        """Charge a job's maximum time up front; call inside the transaction that creates the job."""
        left = self.balance(team_id)
        if minutes > left:
            more = "ask the FieldLens operators for more minutes (`/budget show` says who they are)"
            if left < 1:
                raise BudgetExhausted(
                    f"The team has {left:g} training minutes left, so this job cannot start: {more}."
                )
            raise BudgetExhausted(
                f"This job may train for up to {minutes} min but the team has {left:g} min left. "
                f"Lower max minutes to {int(left)} or less, or {more}."
            )
        self._add(team_id, -minutes, f"reserve job {job_id}", job_id)

    def settle(self, team_id: str, job_id: int, reserved: int, used: int) -> None:
        """Refund what a finished job did not use (idempotent: a job is refunded once)."""
        if self.db.execute(
            "SELECT 1 FROM ledger WHERE job_id = ? AND reason LIKE 'refund%'", [job_id]
        ).fetchone():
            return
        if not self.db.execute(
            "SELECT 1 FROM ledger WHERE job_id = ? AND reason LIKE 'reserve%'", [job_id]
        ).fetchone():
            return  # never reserved (TRY_AGAIN_LATER)
        self._add(team_id, reserved - used, f"refund job {job_id} (used {used} of {reserved} min)", job_id)

    def reset_all(self, when: datetime) -> list[str]:
        """Top every team up to team_minutes, once per month; returns the teams topped up."""
        period = f"reset {when:%Y-%m}"
        topped = []
        with immediate(self.db):
            for (team_id,) in self.db.execute("SELECT id FROM teams").fetchall():
                if self.db.execute(
                    "SELECT 1 FROM ledger WHERE team_id = ? AND reason = ?", [team_id, period]
                ).fetchone():
                    continue
                missing = self.team_minutes - self.balance(team_id)
                self._add(team_id, max(missing, 0), period)
                topped.append(team_id)
        return topped

    def _add(self, team_id: str, minutes: float, reason: str, job_id: int | None = None) -> None:
        self.db.execute(
            "INSERT INTO ledger (team_id, at, minutes, reason, job_id) VALUES (?, ?, ?, ?, ?)",
            [team_id, utcnow(), minutes, reason, job_id],
        )
