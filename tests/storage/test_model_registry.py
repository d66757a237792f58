"""Which model a robot gets (promoted, else the newest that passed the int8 check, never a flagged
one) and named edge tokens that can be revoked, on real SQLite."""

from __future__ import annotations

import pytest

from storage.db import SCHEMA_VERSION, open_db
from storage.edge_tokens import EdgeTokenStore, TokenNameTaken
from storage.errors import NotFound
from storage.models import ModelFlagged, ModelStore
from storage.pulls import PullLog
from tests.model_folders import write_model_folder


@pytest.fixture
def models(tmp_path) -> ModelStore:
    return ModelStore(open_db(tmp_path / "db.sqlite"))


def register(models: ModelStore, tmp_path, name: str, int8_ok: bool = True, team: str = "t"):
    folder = write_model_folder(tmp_path / name, int8_ok=int8_ok)
    return models.register(team, folder.path, name)


def test_robots_get_the_newest_good_model_until_one_is_promoted(models, tmp_path) -> None:
    with pytest.raises(NotFound, match="no model a robot may get"):
        models.servable("t")
    first = register(models, tmp_path, "first")
    second = register(models, tmp_path, "second")
    flagged = register(models, tmp_path, "flagged", int8_ok=False)
    assert flagged.flagged and not second.flagged
    assert models.servable("t").id == second.id  # the newest is flagged: never served
    chosen = models.promote("t", first.id, by_user="42")
    assert chosen.promoted and models.promoted("t").id == first.id  # type: ignore[union-attr]
    newer = register(models, tmp_path, "newer")
    assert models.servable("t").id == first.id  # a newer model does not replace the promoted one
    assert [m.promoted for m in models.list_team("t")] == [True, False, False, False]
    models.promote("t", newer.id)
    assert models.servable("t").id == newer.id and not models.get("t", first.id).promoted


def test_a_flagged_model_cannot_be_promoted_and_teams_are_apart(models, tmp_path) -> None:
    flagged = register(models, tmp_path, "flagged", int8_ok=False)
    with pytest.raises(ModelFlagged, match="failed the int8 check"):
        models.promote("t", flagged.id)
    theirs = register(models, tmp_path, "theirs", team="other")
    with pytest.raises(NotFound):
        models.promote("t", theirs.id)
    assert models.promoted("other") is None


def test_models_registered_before_the_check_was_recorded_are_read_from_the_manifest(models, tmp_path) -> None:
    good = register(models, tmp_path, "old-good")
    bad = register(models, tmp_path, "old-bad", int8_ok=False)
    models.db.execute("UPDATE models SET int8_ok = NULL")  # as rows registered before schema v6 read
    assert models.get("t", bad.id).int8_ok is None
    assert models.servable("t").id == good.id


def test_named_tokens_are_listed_revoked_and_refused_at_once(models, tmp_path) -> None:
    tokens = EdgeTokenStore(models.db)
    robot = tokens.create("t", "competition bot", created_by="42")
    spare = tokens.create("t", "spare")
    with pytest.raises(TokenNameTaken):
        tokens.create("t", "competition  bot")
    assert models.team_for_token(robot) == "t"
    model = register(models, tmp_path, "m")
    PullLog(models.db).record(model.id, robot, "10.0.0.2")
    listed = {t.name: t for t in tokens.list_team("t")}
    assert set(listed) == {"competition bot", "spare"} and listed["competition bot"].last_pull_at is not None
    assert listed["spare"].last_pull_at is None
    revoked = tokens.revoke("t", "competition bot")
    assert revoked.revoked_at is not None
    assert models.team_for_token(robot) is None and models.team_for_token(spare) == "t"
    assert [t.name for t in tokens.list_team("t")] == ["spare"]
    with pytest.raises(NotFound):
        tokens.revoke("t", "competition bot")
    tokens.create("t", "competition bot")  # the name is free again
    assert (
        models.db.execute("SELECT COUNT(*) FROM edge_tokens WHERE token_sha256 = ?", [robot]).fetchone()[0]
        == 0
    )


def test_schema_is_migrated_to_the_newest_version(models) -> None:
    row = models.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert int(row[0]) == SCHEMA_VERSION
