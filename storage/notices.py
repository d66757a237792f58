"""What the bot has told a team about each job: its progress message and the last event announced.

Announcing goes event by event and records each one as it is posted, so a restarted bot carries on
where it stopped: no state change announced twice or skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from storage.db import parse_time

TOKEN_MINUTES = 15  # Discord interaction tokens can edit messages for 15 minutes


@dataclass(frozen=True, slots=True)
class Notice:
    job_id: int
    channel_id: int | None
    message_id: int | None
    application_id: int | None
    interaction_token: str | None
    token_expires_at: datetime | None
    announced_event_id: int

    def token_valid(self, now: datetime | None = None) -> bool:
        return bool(
            self.interaction_token
            and self.token_expires_at
            and (now or datetime.now(UTC)) < self.token_expires_at
        )


class NoticeStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def add(
        self,
        job_id: int,
        channel_id: int | None,
        message_id: int | None,
        application_id: int | None,
        token: str | None,
        issued_at: datetime | None = None,
    ) -> None:
        expires = (issued_at or datetime.now(UTC)) + timedelta(minutes=TOKEN_MINUTES, seconds=-30)
        self.db.execute(
            "INSERT OR REPLACE INTO job_notices (job_id, channel_id, message_id, application_id,"
            " interaction_token, token_expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                job_id,
                str(channel_id) if channel_id else None,
                str(message_id) if message_id else None,
                str(application_id) if application_id else None,
                token,
                expires.isoformat(timespec="milliseconds"),
            ],
        )

    def pending(self) -> list[Notice]:
        rows = self.db.query("SELECT * FROM job_notices WHERE done = 0 ORDER BY job_id")
        return [
            Notice(
                r["job_id"],
                int(r["channel_id"]) if r["channel_id"] else None,
                int(r["message_id"]) if r["message_id"] else None,
                int(r["application_id"]) if r["application_id"] else None,
                r["interaction_token"],
                parse_time(r["token_expires_at"]),
                r["announced_event_id"],
            )
            for r in rows
        ]

    def announced(self, job_id: int, event_id: int) -> None:
        self.db.execute(
            "UPDATE job_notices SET announced_event_id = MAX(announced_event_id, ?) WHERE job_id = ?",
            [event_id, job_id],
        )

    def done(self, job_id: int) -> None:
        self.db.execute("UPDATE job_notices SET done = 1 WHERE job_id = ?", [job_id])

    def expire_token(self, job_id: int) -> None:
        self.db.execute("UPDATE job_notices SET interaction_token = NULL WHERE job_id = ?", [job_id])
