"""Delivered models of a team: the registry, which model the team chose for its robots, and which one
a robot gets.

A robot pulls the team's promoted model (the newest promotion wins); before the first promotion, the
newest model that passed the int8 check. A model that failed it is flagged: it is never served and
cannot be promoted. Edge tokens live in storage/edge_tokens.py.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import sqlite_utils

from storage.db import ensure_team, parse_time, utcnow
from storage.domain import Model
from storage.edge_tokens import EdgeTokenStore
from storage.errors import NotFound, UserError
from storage.model_folder import ModelFolder

# Every model column, and whether it is its team's promoted model.
_SELECT = (
    "SELECT m.*, m.id IS (SELECT p.model_id FROM model_promotions p WHERE p.team_id = m.team_id"
    " ORDER BY p.id DESC LIMIT 1) AS promoted FROM models m"
)


class ModelFlagged(UserError):
    """The model failed the int8 check, so no robot may get it."""


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
        int8_ok=None if row.get("int8_ok") is None else bool(row["int8_ok"]),
        promoted=bool(row.get("promoted")),
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
        """Record a delivered model folder (it must hold a manifest) as the team's newest model."""
        manifest = ModelFolder(path).manifest()
        with self.db.atomic():
            ensure_team(self.db, team_id)
            model_id = self.db.execute(
                "INSERT INTO models (team_id, job_id, name, created_at, path, labels, metrics,"
                " parent_model_id, int8_ok) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    team_id,
                    job_id,
                    name,
                    utcnow(),
                    str(Path(path).resolve()),
                    json.dumps(manifest.labels),
                    json.dumps(manifest.metrics.headline()),
                    parent_model_id,
                    int(manifest.int8_ok),
                ],
            ).lastrowid
        return self.get(team_id, int(model_id))  # type: ignore[arg-type]

    def get(self, team_id: str, model_id: int) -> Model:
        rows = list(self.db.query(f"{_SELECT} WHERE m.team_id = ? AND m.id = ?", [team_id, model_id]))
        if not rows:
            raise NotFound(
                f"No model {model_id} in this team. See its models with `/model list` "
                "(`fieldlens model list` on the command line)."
            )
        return _row_to_model(rows[0])

    def list_team(self, team_id: str) -> list[Model]:
        return [
            _row_to_model(r) for r in self.db.query(f"{_SELECT} WHERE m.team_id = ? ORDER BY m.id", [team_id])
        ]

    def latest(self, team_id: str) -> Model:
        rows = list(self.db.query(f"{_SELECT} WHERE m.team_id = ? ORDER BY m.id DESC LIMIT 1", [team_id]))
        if not rows:
            raise NotFound("This team has no delivered model yet. Train one first.")
        return _row_to_model(rows[0])

    # -- the model robots get ----------------------------------------------------------------------

    def promote(self, team_id: str, model_id: int, by_user: str = "") -> Model:
        """Make `model_id` the model the team's robots pull (a flagged model is refused)."""
        model = self.get(team_id, model_id)
        if not self._passed(model):
            raise ModelFlagged(
                f"Model {model.id} failed the int8 check (its 8-bit model is much worse than the float "
                "one), so robots never get it. Promote another model, or train longer with more images."
            )
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO model_promotions (team_id, model_id, at, by_user) VALUES (?, ?, ?, ?)",
                [team_id, model.id, utcnow(), by_user],
            )
        return self.get(team_id, model.id)

    def promoted(self, team_id: str) -> Model | None:
        """The model the team promoted last, if any."""
        rows = list(self.db.query(f"{_SELECT} WHERE m.team_id = ? AND promoted", [team_id]))
        return _row_to_model(rows[0]) if rows else None

    def servable(self, team_id: str) -> Model:
        """What a robot pulls: the promoted model, else the newest that passed the int8 check."""
        chosen = self.promoted(team_id)
        if chosen is not None:
            return chosen
        rows = self.db.query(
            f"{_SELECT} WHERE m.team_id = ? AND (m.int8_ok IS NULL OR m.int8_ok) ORDER BY m.id DESC",
            [team_id],
        )
        for row in rows:
            model = _row_to_model(row)
            if self._passed(model):
                return model
        raise NotFound(
            "This team has no model a robot may get yet: none has passed the int8 check. Train one first."
        )

    def _passed(self, model: Model) -> bool:
        """Whether the model passed the int8 check; for models registered before that was recorded,
        from the manifest (a folder without one is not served)."""
        if model.int8_ok is not None:
            return model.int8_ok
        try:
            return ModelFolder(model.path).manifest().int8_ok
        except (OSError, ValueError, KeyError):
            return False

    # -- edge tokens (storage/edge_tokens.py) ------------------------------------------------------

    @property
    def tokens(self) -> EdgeTokenStore:
        return EdgeTokenStore(self.db)

    def create_edge_token(self, team_id: str, name: str | None = None, created_by: str = "") -> str:
        """A new token for one of the team's robots (named `robot-<4 hex digits>` unless named); only its
        hash is stored, so show it to the user once."""
        return EdgeTokenStore(self.db).create(team_id, name or f"robot-{secrets.token_hex(2)}", created_by)

    def team_for_token(self, token: str) -> str | None:
        """The team of a live (not revoked) token."""
        return EdgeTokenStore(self.db).team_for(token)
