"""Delivered models of a team, and the edge tokens robots use to pull the latest one."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import sqlite_utils

from storage.db import ensure_team, parse_time, utcnow
from storage.domain import Model
from storage.errors import NotFound

# Files a robot may download from a model folder.
EDGE_FILES = {"int8": "model_int8.tflite", "labels": "labels.txt"}


def _row_to_model(row: dict) -> Model:
    return Model(
        id=row["id"],
        team_id=row["team_id"],
        job_id=row["job_id"],
        name=row["name"],
        created_at=parse_time(row["created_at"]),  # type: ignore[arg-type]
        path=row["path"],
        labels=json.loads(row["labels"]),
        metrics=json.loads(row["metrics"]),
        parent_model_id=row["parent_model_id"],
    )


class ModelStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def register(
        self,
        team_id: str,
        path: Path,
        name: str,
        job_id: int | None = None,
        parent_model_id: int | None = None,
    ) -> Model:
        """Record a delivered model folder (it must hold manifest.json) as the team's newest model."""
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        with self.db.atomic():
            ensure_team(self.db, team_id)
            model_id = self.db.execute(
                "INSERT INTO models (team_id, job_id, name, created_at, path, labels, metrics,"
                " parent_model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    team_id,
                    job_id,
                    name,
                    utcnow(),
                    str(Path(path).resolve()),
                    json.dumps(manifest["labels"]),
                    json.dumps({k: v for k, v in manifest["metrics"].items() if not isinstance(v, dict)}),
                    parent_model_id,
                ],
            ).lastrowid
        return self.get(team_id, int(model_id))  # type: ignore[arg-type]

    def get(self, team_id: str, model_id: int) -> Model:
        rows = list(self.db.query("SELECT * FROM models WHERE team_id = ? AND id = ?", [team_id, model_id]))
        if not rows:
            raise NotFound(f"No model #{model_id} in this team.")
        return _row_to_model(rows[0])

    def list_team(self, team_id: str) -> list[Model]:
        return [
            _row_to_model(r)
            for r in self.db.query("SELECT * FROM models WHERE team_id = ? ORDER BY id", [team_id])
        ]

    def latest(self, team_id: str) -> Model:
        rows = list(
            self.db.query("SELECT * FROM models WHERE team_id = ? ORDER BY id DESC LIMIT 1", [team_id])
        )
        if not rows:
            raise NotFound("This team has no delivered model yet. Train one first.")
        return _row_to_model(rows[0])

    # -- edge tokens -----------------------------------------------------------------------------

    def create_edge_token(self, team_id: str) -> str:
        """A new token for the team's robots; only its hash is stored, so show it to the user once."""
        token = secrets.token_urlsafe(32)
        with self.db.atomic():
            ensure_team(self.db, team_id)
            self.db.execute(
                "INSERT INTO edge_tokens (team_id, token_sha256, created_at) VALUES (?, ?, ?)",
                [team_id, hashlib.sha256(token.encode()).hexdigest(), utcnow()],
            )
        return token

    def team_for_token(self, token: str) -> str | None:
        row = self.db.execute(
            "SELECT team_id FROM edge_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
            [hashlib.sha256(token.encode()).hexdigest()],
        ).fetchone()
        return row[0] if row else None
