"""The SQLite layer: opening the database, its schema and migrations.

The schema is created by numbered migrations; ``meta.schema_version`` says which ran.
Writes that belong together go through ``db.atomic()`` (nested blocks become savepoints).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sized
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def utcnow() -> str:
    """Timestamps are stored as ISO 8601 UTC strings (they sort as text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def marks(values: Sized) -> str:
    """Placeholders for an IN list; values always travel as parameters, never in the SQL text."""
    return ",".join("?" * len(values))


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _v1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE teams (
            id TEXT PRIMARY KEY,            -- Discord guild id, or 'local'
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            channel_id TEXT,                -- notification channel (bot)
            role_id TEXT                    -- role allowed to upload/train/delete (bot)
        );
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL REFERENCES teams(id),
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            image_count INTEGER NOT NULL,
            box_count INTEGER NOT NULL,
            label_counts TEXT NOT NULL,     -- JSON {label: boxes}
            warnings TEXT NOT NULL,         -- JSON [sentence]
            lint TEXT NOT NULL,             -- JSON [sentence]
            split_seed INTEGER NOT NULL,
            val_fraction REAL NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            parents TEXT NOT NULL DEFAULT '[]',  -- JSON [dataset id] when combined
            UNIQUE (team_id, name)
        );
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,           -- blob in the file store
            format TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            split TEXT NOT NULL CHECK (split IN ('train', 'val'))
        );
        CREATE INDEX images_dataset ON images(dataset_id);
        CREATE INDEX images_sha256 ON images(sha256);
        CREATE TABLE boxes (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            xmin REAL NOT NULL, ymin REAL NOT NULL, xmax REAL NOT NULL, ymax REAL NOT NULL,
            difficult INTEGER NOT NULL DEFAULT 0,
            truncated INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX boxes_image ON boxes(image_id);
        CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL REFERENCES teams(id),
            job_id INTEGER REFERENCES jobs(id),
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            path TEXT NOT NULL,             -- folder with model files and manifest
            labels TEXT NOT NULL,           -- JSON [label]
            metrics TEXT NOT NULL DEFAULT '{}',
            parent_model_id INTEGER REFERENCES models(id)
        );
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL REFERENCES teams(id),
            state TEXT NOT NULL,
            model TEXT NOT NULL,
            steps INTEGER NOT NULL,
            batch_size INTEGER NOT NULL,
            max_minutes INTEGER NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            config TEXT NOT NULL DEFAULT '{}',   -- JSON training config
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            steps_completed INTEGER NOT NULL DEFAULT 0,
            training_seconds REAL NOT NULL DEFAULT 0,
            metrics TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            from_model_id INTEGER REFERENCES models(id),
            val_dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            model_id INTEGER REFERENCES models(id),
            checkpoint_dir TEXT,
            worker_id TEXT,
            heartbeat_at TEXT
        );
        CREATE INDEX jobs_team_state ON jobs(team_id, state);
        CREATE TABLE job_datasets (
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            PRIMARY KEY (job_id, dataset_id)
        );
        CREATE TABLE job_events (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,             -- state | progress | checkpoint | log
            state TEXT,
            data TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX job_events_job ON job_events(job_id, id);
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL REFERENCES teams(id),
            at TEXT NOT NULL,
            minutes REAL NOT NULL,          -- + credit, - charge
            reason TEXT NOT NULL,
            job_id INTEGER REFERENCES jobs(id)
        );
        CREATE INDEX ledger_team ON ledger(team_id);
        """
    )


def _v2(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE edge_tokens (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL REFERENCES teams(id),
            token_sha256 TEXT NOT NULL UNIQUE,  -- the token itself is shown once and never stored
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX models_team ON models(team_id, id);
        """
    )


def _v3(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX jobs_state ON jobs(state, id);
        CREATE INDEX ledger_job ON ledger(job_id);
        -- The bot's record of what it told a team about a job, so a restart neither repeats nor skips.
        CREATE TABLE job_notices (
            job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
            channel_id TEXT,                -- where the progress message lives
            message_id TEXT,
            application_id TEXT,            -- interaction webhook, usable for 15 minutes
            interaction_token TEXT,
            token_expires_at TEXT,
            announced_event_id INTEGER NOT NULL DEFAULT 0,  -- last job_events.id posted
            done INTEGER NOT NULL DEFAULT 0
        );
        """
    )


def _v4(db: sqlite_utils.Database) -> None:
    """A third split, `test`; near-duplicate hashes and groups; where a dataset came from.

    SQLite cannot change a CHECK constraint in place, so `images` is rebuilt (its rows keep their
    ids, so `boxes` still points at them; `migrate` turns foreign keys off around it).
    """
    db.executescript(
        """
        CREATE TABLE images_v4 (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,           -- blob in the file store
            format TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            split TEXT NOT NULL CHECK (split IN ('train', 'val', 'test')),
            phash TEXT NOT NULL DEFAULT '', -- 16 hex digits: difference hash of a grey thumbnail
            dup_group INTEGER               -- near copies in one dataset share a group number
        );
        INSERT INTO images_v4 (id, dataset_id, filename, sha256, format, width, height, split)
            SELECT id, dataset_id, filename, sha256, format, width, height, split FROM images;
        DROP TABLE images;
        ALTER TABLE images_v4 RENAME TO images;
        CREATE INDEX images_dataset ON images(dataset_id);
        CREATE INDEX images_sha256 ON images(sha256);
        ALTER TABLE datasets ADD COLUMN layout TEXT NOT NULL DEFAULT 'Pascal VOC';
        ALTER TABLE datasets ADD COLUMN converter TEXT NOT NULL DEFAULT 'voc';
        ALTER TABLE datasets ADD COLUMN split_note TEXT NOT NULL DEFAULT '';
        """
    )


def _v5(db: sqlite_utils.Database) -> None:
    """Which robot (edge token) pulled which model and when: the model page lists them."""
    db.executescript(
        """
        CREATE TABLE model_pulls (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            token_id INTEGER REFERENCES edge_tokens(id) ON DELETE SET NULL,
            at TEXT NOT NULL,
            remote TEXT NOT NULL DEFAULT '',  -- the robot's address as the web server saw it
            agent TEXT NOT NULL DEFAULT ''    -- its User-Agent
        );
        CREATE INDEX model_pulls_model ON model_pulls(model_id, id);
        """
    )


def _v6(db: sqlite_utils.Database) -> None:
    """The model a team chose for its robots (promotions, newest wins), whether each model passed the
    int8 check (robots are never served one that failed), and named edge tokens."""
    db.executescript(
        """
        ALTER TABLE models ADD COLUMN int8_ok INTEGER;  -- NULL: registered before v6, read from its manifest
        CREATE TABLE model_promotions (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL REFERENCES teams(id),
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            by_user TEXT NOT NULL DEFAULT ''  -- who promoted it (a Discord user id, or the CLI's user)
        );
        CREATE INDEX model_promotions_team ON model_promotions(team_id, id);
        ALTER TABLE edge_tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
        ALTER TABLE edge_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
        CREATE INDEX edge_tokens_team ON edge_tokens(team_id, id);
        """
    )


def _v7(db: sqlite_utils.Database) -> None:
    """`jobs.val_dataset_id` goes: nothing ever wrote it (a job's datasets are in `job_datasets`, and
    each image's split says which are validation images). DROP COLUMN needs SQLite 3.35 or later."""
    db.execute("ALTER TABLE jobs DROP COLUMN val_dataset_id")


# Append new migrations; never edit one that has shipped.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite_utils.Database) -> int:
    if not db["meta"].exists():
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite_utils.Database) -> int:
    """Run the migrations this database has not seen yet; returns the new version.

    Foreign keys are off while they run (a table rebuild must not cascade deletes) and checked after.
    """
    foreign_keys = db.execute("PRAGMA foreign_keys").fetchone()[0]
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        version = _migrate(db)
        if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise RuntimeError("a migration left rows pointing at missing rows; restore the backup")
    finally:
        db.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
    return version


def _migrate(db: sqlite_utils.Database) -> int:
    with db.atomic():
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        current = schema_version(db)
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {current} is newer than this FieldLens ({SCHEMA_VERSION}); "
                "upgrade FieldLens"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            log.info("migrating database to schema version %s", version)
            MIGRATIONS[version - 1](db)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", [str(version)]
            )
    return SCHEMA_VERSION


def open_db(path: Path | str | None) -> sqlite_utils.Database:
    """Open (creating and migrating) the database. `None` opens a private in-memory one."""
    if path is None:
        db = sqlite_utils.Database(memory=True)
    else:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite_utils.Database(path)
        db.enable_wal()
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = NORMAL")
    migrate(db)
    return db


@contextlib.contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[None]:
    """A write transaction that takes the write lock at once (BEGIN IMMEDIATE).

    Read-then-write sequences (claim a job, check then reserve a budget) need it: two processes
    can never both read the old state and then both write. Inside a transaction it is a savepoint.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.rollback()
        raise
    else:
        db.conn.execute("COMMIT")


def ensure_team(db: sqlite_utils.Database, team_id: str, name: str = "") -> None:
    """Create the team row if it does not exist (a guild the bot sees, or 'local')."""
    db.execute(
        "INSERT OR IGNORE INTO teams (id, name, created_at) VALUES (?, ?, ?)", [team_id, name, utcnow()]
    )
