"""Edge tokens: what a team's robots show the web server to pull the team's model.

A token is random, shown once to whoever made it, and stored only as its sha256. Each has a name (the
robot it is for), unique among the team's live tokens. A revoked token is refused from the next
request on: the server looks the hash up on every request, there is no cache to outlive it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from storage.db import ensure_team, parse_time, utcnow
from storage.errors import NameTaken, NotFound, UserError

MAX_NAME = 40


class TokenNameTaken(NameTaken):
    """A live token of the team already has that name."""


def token_name(name: str) -> str:
    """A token's name as stored: single spaces, at most MAX_NAME characters."""
    return " ".join(name.split())[:MAX_NAME]


@dataclass(frozen=True, slots=True)
class EdgeToken:
    id: int
    team_id: str
    name: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_pull_at: datetime | None  # the last model download with it (storage/pulls.py)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EdgeTokenStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def create(self, team_id: str, name: str, created_by: str = "") -> str:
        """A new token named `name` (the robot it is for); returns the token, which is never stored."""
        name = token_name(name)
        if not name:
            raise UserError("Give the token a name: the robot it is for, like `competition-bot`.")
        token = secrets.token_urlsafe(32)
        with self.db.atomic():
            ensure_team(self.db, team_id)
            if self._live(team_id, name) is not None:
                raise TokenNameTaken(
                    f"This team already has an edge token named {name!r}. Pick another name, or revoke "
                    "that one first."
                )
            self.db.execute(
                "INSERT INTO edge_tokens (team_id, token_sha256, created_at, name, created_by)"
                " VALUES (?, ?, ?, ?, ?)",
                [team_id, _digest(token), utcnow(), name, created_by],
            )
        return token

    def list_team(self, team_id: str, revoked: bool = False) -> list[EdgeToken]:
        """The team's tokens, newest first (live ones only unless `revoked`)."""
        rows = self.db.execute(
            "SELECT t.id, t.team_id, t.name, t.created_at, t.created_by, t.revoked_at,"
            " (SELECT MAX(p.at) FROM model_pulls p WHERE p.token_id = t.id)"
            " FROM edge_tokens t WHERE t.team_id = ? AND (? OR t.revoked_at IS NULL) ORDER BY t.id DESC",
            [team_id, int(revoked)],
        ).fetchall()
        return [
            EdgeToken(r[0], r[1], r[2], parse_time(r[3]), r[4], parse_time(r[5]), parse_time(r[6]))  # type: ignore[arg-type]
            for r in rows
        ]

    def revoke(self, team_id: str, name: str) -> EdgeToken:
        """Refuse the team's live token `name` from now on."""
        name = token_name(name)
        with self.db.atomic():
            token_id = self._live(team_id, name)
            if token_id is None:
                raise NotFound(
                    f"This team has no live edge token named {name!r}. `/model token list` shows them."
                )
            self.db.execute("UPDATE edge_tokens SET revoked_at = ? WHERE id = ?", [utcnow(), token_id])
        return next(t for t in self.list_team(team_id, revoked=True) if t.id == token_id)

    def team_for(self, token: str) -> str | None:
        """The team of a live token; None for an unknown or revoked one."""
        row = self.db.execute(
            "SELECT team_id FROM edge_tokens WHERE token_sha256 = ? AND revoked_at IS NULL", [_digest(token)]
        ).fetchone()
        return row[0] if row else None

    def _live(self, team_id: str, name: str) -> int | None:
        row = self.db.execute(
            "SELECT id FROM edge_tokens WHERE team_id = ? AND name = ? AND revoked_at IS NULL",
            [team_id, name],
        ).fetchone()
        return row[0] if row else None
