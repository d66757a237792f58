"""What the fake Discord sends: constants, records of interactions, and payloads that follow Discord's
API v10 documents closely enough for discord.py to parse them fully (see fake_discord.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EPOCH = 1_420_070_400_000
JSON_HEADERS = {"Content-Type": "application/json"}
ADMIN = str(1 << 3)
MEMBER = str((1 << 10) | (1 << 11) | (1 << 31))  # view channel, send messages, use application commands
APP_ID = "900000000000000001"
BOT_USER = {
    "id": APP_ID,
    "username": "FieldLens",
    "discriminator": "0",
    "global_name": "FieldLens",
    "avatar": None,
    "bot": True,
    "public_flags": 0,
    "flags": 0,
    "verified": True,
    "mfa_enabled": False,
}


def user(uid: int, name: str) -> dict[str, Any]:
    return {"id": str(uid), "username": name, "discriminator": "0", "global_name": name, "avatar": None}


@dataclass
class Guild:
    id: str
    name: str
    channel_id: str
    roles: dict[str, str] = field(default_factory=dict)  # role id -> name
    filesize_limit: int = 10 * 1024 * 1024


@dataclass
class Interaction:
    """One interaction we dispatched and everything the bot did in answer to it."""

    id: str
    token: str
    payload: dict[str, Any]
    dispatched_at: float
    sent_at: float = 0.0  # its gateway frame was written to the socket
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # {"type", "data", "files", "at"}
    followups: list[dict[str, Any]] = field(default_factory=list)  # message payloads
    edits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first_response_at(self) -> float | None:
        return self.callbacks[0]["at"] if self.callbacks else None

    def messages(self) -> list[dict[str, Any]]:
        """Everything shown to the user, in order: the response, edits, follow-ups."""
        out = [c["data"] for c in self.callbacks if c["data"]]
        return out + self.edits + self.followups

    def text(self) -> str:
        parts = []
        for m in self.messages():
            parts.append(m.get("content") or "")
            for e in m.get("embeds") or []:
                parts += [e.get("title") or "", e.get("description") or ""]
                parts += [f"{f['name']}: {f['value']}" for f in e.get("fields", [])]
        return "\n".join(p for p in parts if p)

    def files(self) -> list[str]:
        return [f["filename"] for c in self.callbacks for f in c["files"]] + [
            a["filename"] for m in self.followups + self.edits for a in m.get("attachments", [])
        ]

    @property
    def ephemeral(self) -> bool:
        first = self.callbacks[0] if self.callbacks else {}
        return bool((first.get("data") or {}).get("flags", 0) & 64)


def ready_payload(guild_ids: list[str], port: int) -> dict[str, Any]:
    return {
        "v": 10,
        "user": BOT_USER,
        "guilds": [{"id": g, "unavailable": True} for g in guild_ids],
        "session_id": "fake-session",
        "resume_gateway_url": f"ws://127.0.0.1:{port}/",
        "application": {"id": APP_ID, "flags": 0},
        "private_channels": [],
        "relationships": [],
    }


def guild_payload(g: Guild) -> dict[str, Any]:
    everyone = {"id": g.id, "name": "@everyone", "permissions": MEMBER, "position": 0}
    roles = [everyone] + [
        {"id": rid, "name": name, "permissions": MEMBER, "position": i + 1}
        for i, (rid, name) in enumerate(g.roles.items())
    ]
    for r in roles:
        r.update(color=0, hoist=False, managed=False, mentionable=False, flags=0, icon=None)
    return {
        "id": g.id,
        "name": g.name,
        "icon": None,
        "owner_id": "1",
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": roles,
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "member_count": 3,
        "large": False,
        "unavailable": False,
        "joined_at": "2026-01-01T00:00:00+00:00",
        "channels": [channel_payload(g)],
        "members": [],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
    }


def channel_payload(g: Guild) -> dict[str, Any]:
    return {
        "id": g.channel_id,
        "type": 0,
        "guild_id": g.id,
        "name": "robot-vision",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


def member_payload(uid: int, name: str, perms: str, roles: list[str]) -> dict[str, Any]:
    return {
        "user": user(uid, name),
        "roles": roles,
        "joined_at": "2026-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": None,
        "avatar": None,
        "permissions": perms,
    }
