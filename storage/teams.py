"""A team's Discord settings: its notification channel and the role allowed to change things."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from storage.db import ensure_team


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    channel_id: int | None
    role_id: int | None


class TeamStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def get(self, team_id: str, name: str = "") -> Team:
        ensure_team(self.db, team_id, name)
        row = self.db.execute(
            "SELECT name, channel_id, role_id FROM teams WHERE id = ?", [team_id]
        ).fetchone()
        return Team(team_id, row[0], int(row[1]) if row[1] else None, int(row[2]) if row[2] else None)

    def configure(self, team_id: str, channel_id: int | None, role_id: int | None, name: str = "") -> Team:
        with self.db.atomic():
            ensure_team(self.db, team_id, name)
            self.db.execute(
                "UPDATE teams SET channel_id = ?, role_id = ?, name = COALESCE(NULLIF(?, ''), name)"
                " WHERE id = ?",
                [str(channel_id) if channel_id else None, str(role_id) if role_id else None, name, team_id],
            )
        return self.get(team_id)
