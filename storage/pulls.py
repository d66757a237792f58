"""Which robots pulled a model, and when: written by the web server's edge route, read by the model page.

A robot is known by its edge token (a team may give each robot its own) and the address it came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from storage.db import parse_time, utcnow


@dataclass(frozen=True, slots=True)
class Pull:
    model_id: int
    at: datetime
    token_id: int | None  # the edge token the robot used (None once that token is deleted)
    token_name: str  # the robot it was made for ("" for tokens made before they had names)
    remote: str
    agent: str


class PullLog:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def record(self, model_id: int, token: str, remote: str = "", agent: str = "") -> None:
        """A robot holding `token` downloaded model `model_id`."""
        row = self.db.execute(
            "SELECT id FROM edge_tokens WHERE token_sha256 = ?", [hashlib.sha256(token.encode()).hexdigest()]
        ).fetchone()
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO model_pulls (model_id, token_id, at, remote, agent) VALUES (?, ?, ?, ?, ?)",
                [model_id, row[0] if row else None, utcnow(), remote[:100], agent[:200]],
            )

    def of_model(self, team_id: str, model_id: int, limit: int = 50) -> list[Pull]:
        """The newest pulls of a team's model, newest first."""
        rows = self.db.execute(
            "SELECT p.model_id, p.at, p.token_id, COALESCE(t.name, ''), p.remote, p.agent FROM model_pulls p"
            " JOIN models m ON m.id = p.model_id LEFT JOIN edge_tokens t ON t.id = p.token_id"
            " WHERE m.team_id = ? AND p.model_id = ? ORDER BY p.id DESC LIMIT ?",
            [team_id, model_id, limit],
        ).fetchall()
        return [
            Pull(r[0], parse_time(r[1]), r[2], r[3], r[4], r[5])  # type: ignore[arg-type]
            for r in rows
        ]
