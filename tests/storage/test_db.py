"""The SQLite layer: WAL, busy timeout, schema version and migrations."""

from __future__ import annotations

import pytest

from storage import db as dbmod


def test_new_database_is_migrated_with_wal_and_busy_timeout(tmp_path) -> None:
    db = dbmod.open_db(tmp_path / "x.db")
    assert dbmod.schema_version(db) == dbmod.SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == dbmod.BUSY_TIMEOUT_MS
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert {
        "teams",
        "datasets",
        "images",
        "boxes",
        "jobs",
        "job_events",
        "job_datasets",
        "models",
        "ledger",
        "edge_tokens",
    } <= set(db.table_names())


def test_reopening_does_not_migrate_again(tmp_path) -> None:
    db = dbmod.open_db(tmp_path / "x.db")
    dbmod.ensure_team(db, "local")
    db.close()
    db = dbmod.open_db(tmp_path / "x.db")
    assert db["teams"].count == 1


def test_a_new_migration_runs_once(tmp_path, monkeypatch) -> None:
    db = dbmod.open_db(tmp_path / "x.db")
    calls = []

    def v2(d):
        calls.append(1)
        d.execute("ALTER TABLE teams ADD COLUMN motto TEXT")

    new = dbmod.SCHEMA_VERSION + 1
    monkeypatch.setattr(dbmod, "MIGRATIONS", [*dbmod.MIGRATIONS, v2])
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", new)
    assert dbmod.migrate(db) == new
    assert dbmod.migrate(db) == new
    assert calls == [1]
    assert "motto" in db["teams"].columns_dict


def test_failed_migration_rolls_back(tmp_path, monkeypatch) -> None:
    db = dbmod.open_db(tmp_path / "x.db")

    def v2(d):
        d.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    old = dbmod.SCHEMA_VERSION
    monkeypatch.setattr(dbmod, "MIGRATIONS", [*dbmod.MIGRATIONS, v2])
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", old + 1)
    with pytest.raises(RuntimeError):
        dbmod.migrate(db)
    assert dbmod.schema_version(db) == old
    assert "half" not in db.table_names()


def test_database_from_a_newer_fieldlens_is_refused(tmp_path) -> None:
    db = dbmod.open_db(tmp_path / "x.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.conn.commit()
    with pytest.raises(RuntimeError, match="newer than this FieldLens"):
        dbmod.migrate(db)


def test_v7_drops_the_unused_val_dataset_id_and_keeps_each_job(tmp_path, monkeypatch) -> None:
    v7 = dbmod.MIGRATIONS.index(dbmod._v7) + 1
    with monkeypatch.context() as m:  # a database as the release before v7 left it
        m.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[: v7 - 1])
        m.setattr(dbmod, "SCHEMA_VERSION", v7 - 1)
        db = dbmod.open_db(tmp_path / "x.db")
    assert "val_dataset_id" in db["jobs"].columns_dict
    dbmod.ensure_team(db, "local")
    now = dbmod.utcnow()
    job = dict(team_id="local", state="queued", model="m", steps=10, batch_size=2, max_minutes=5)
    db["jobs"].insert({**job, "id": 4, "created_at": now, "updated_at": now, "steps_completed": 3})
    db["job_events"].insert({"job_id": 4, "at": now, "kind": "state", "state": "queued"})
    db.conn.commit()

    assert dbmod.migrate(db) == dbmod.SCHEMA_VERSION >= v7
    assert "val_dataset_id" not in db["jobs"].columns_dict
    assert db["jobs"].get(4)["steps_completed"] == 3
    assert [e["job_id"] for e in db["job_events"].rows] == [4]
