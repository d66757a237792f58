"""A fake Discord on 127.0.0.1 for the real discord.py client: REST, gateway websocket, attachment URLs.

It implements the routes FieldLens uses and records every request. A route it does not know answers
404 and is recorded in `unknown`, which the fixtures assert is empty. Interaction callbacks are
checked to be answered exactly once (a second callback is recorded in `violations`, as Discord
would refuse it).

Payloads follow Discord's API v10 documents closely enough for discord.py to parse them fully.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

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


class FakeDiscord:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.guilds: dict[str, Guild] = {}
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[str] = []
        self.violations: list[str] = []
        self.interactions: dict[str, Interaction] = {}
        self.by_token: dict[str, Interaction] = {}
        self.messages: dict[str, dict[str, Any]] = {}  # message id -> payload
        self.channel_messages: list[dict[str, Any]] = []  # POST /channels/{id}/messages, in order
        self.channel_edits: list[tuple[str, dict[str, Any]]] = []
        self.attachments: dict[str, bytes] = {}
        self.expired_tokens: set[str] = set()
        self.rate_limit_once: set[tuple[str, str]] = set()  # (method, path prefix)
        self.rate_limited: list[str] = []
        self.sockets: list[web.WebSocketResponse] = []
        self.identifies = 0
        self.resumes = 0
        self.seq = 0
        self.port = 0
        self.app = web.Application(client_max_size=1024**3)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snowflake(self) -> str:
        return str(((int(time.time() * 1000) - EPOCH) << 22) + next(self._ids))

    def add_guild(self, name: str, roles: list[str] = ()) -> Guild:  # type: ignore[assignment]
        guild = Guild(self.snowflake(), name, self.snowflake())
        for role in roles:
            guild.roles[self.snowflake()] = role
        self.guilds[guild.id] = guild
        return guild

    def add_attachment(
        self, filename: str, data: bytes, content_type: str = "application/zip"
    ) -> dict[str, Any]:
        aid = self.snowflake()
        self.attachments[aid] = data
        url = f"{self.base}/attachments/{aid}/{filename}"
        return {
            "id": aid,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    # -- gateway -----------------------------------------------------------------------------

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            op = data["op"]
            if op == 1:
                await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
            elif op == 2:
                self.identifies += 1
                await self._send(ws, "READY", self._ready())
                for guild in self.guilds.values():
                    await self._send(ws, "GUILD_CREATE", self._guild_payload(guild))
            elif op == 6:
                self.resumes += 1
                await self._send(ws, "RESUMED", {})
        if ws in self.sockets:
            self.sockets.remove(ws)
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        await ws.send_json({"op": 0, "t": event, "s": self.seq, "d": data})

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        for ws in list(self.sockets):
            await self._send(ws, event, data)

    async def request_reconnect(self) -> None:
        """Discord's op 7: the client should reconnect and resume."""
        for ws in list(self.sockets):
            await ws.send_json({"op": 7, "d": None, "s": None, "t": None})

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": BOT_USER,
            "guilds": [{"id": g, "unavailable": True} for g in self.guilds],
            "session_id": "fake-session",
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/",
            "application": {"id": APP_ID, "flags": 0},
            "private_channels": [],
            "relationships": [],
        }

    def _guild_payload(self, g: Guild) -> dict[str, Any]:
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
            "channels": [self._channel(g)],
            "members": [],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
        }

    def _channel(self, g: Guild) -> dict[str, Any]:
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

    # -- interactions --------------------------------------------------------------------------

    def _member(self, g: Guild, uid: int, name: str, perms: str, roles: list[str]) -> dict[str, Any]:
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

    def _base_interaction(
        self, itype: int, guild: Guild | None, uid: int, name: str, perms: str, roles: list[str]
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": self.snowflake(),
            "application_id": APP_ID,
            "type": itype,
            "token": f"tok-{self.snowflake()}",
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "app_permissions": ADMIN,
            "attachment_size_limit": guild.filesize_limit if guild else 10 * 1024 * 1024,
        }
        if guild is None:
            payload["user"] = user(uid, name)
            payload["channel_id"] = self.snowflake()
            payload["channel"] = {"id": payload["channel_id"], "type": 1, "recipients": [user(uid, name)]}
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": "1"}
        else:
            payload.update(
                guild_id=guild.id,
                channel_id=guild.channel_id,
                channel=self._channel(guild),
                guild={"id": guild.id, "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=self._member(guild, uid, name, perms, roles),
                context=0,
                authorizing_integration_owners={"0": guild.id},
            )
        return payload

    async def slash(
        self,
        command: str,
        options: dict[str, Any] | None = None,
        guild: Guild | None = None,
        uid: int = 111,
        name: str = "student",
        perms: str = ADMIN,
        roles: list[str] = (),  # type: ignore[assignment]
        resolved: dict[str, Any] | None = None,
        autocomplete: str | None = None,
    ) -> Interaction:
        """Dispatch `/group sub` with options (name -> (type, value)) as INTERACTION_CREATE."""
        payload = self._base_interaction(4 if autocomplete else 2, guild, uid, name, perms, list(roles))
        opts = [
            {"name": k, "type": t, "value": v, **({"focused": True} if k == autocomplete else {})}
            for k, (t, v) in (options or {}).items()
        ]
        parts = command.split()
        data: dict[str, Any] = {"id": self.snowflake(), "name": parts[0], "type": 1}
        if guild:
            data["guild_id"] = guild.id
        data["options"] = [{"name": parts[1], "type": 1, "options": opts}] if len(parts) > 1 else opts
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        return await self._dispatch_interaction(payload)

    async def press(
        self,
        message: dict[str, Any],
        custom_id: str,
        guild: Guild,
        uid: int = 111,
        name: str = "student",
        perms: str = ADMIN,
        roles: list[str] = (),  # type: ignore[assignment]
    ) -> Interaction:
        """Press a button on a message the bot sent."""
        payload = self._base_interaction(3, guild, uid, name, perms, list(roles))
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        payload["message"] = message
        return await self._dispatch_interaction(payload)

    async def _dispatch_interaction(self, payload: dict[str, Any]) -> Interaction:
        record = Interaction(payload["id"], payload["token"], payload, time.perf_counter())
        self.interactions[record.id] = record
        self.by_token[record.token] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    # -- REST ----------------------------------------------------------------------------------

    def _message(
        self, channel_id: str | None, body: dict[str, Any], files: list[dict[str, Any]]
    ) -> dict[str, Any]:
        mid = self.snowflake()
        message = {
            "id": mid,
            "channel_id": channel_id or "0",
            "author": BOT_USER,
            "content": body.get("content") or "",
            "timestamp": "2026-11-22T10:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": self.snowflake(),
                    "filename": f["filename"],
                    "size": len(f["data"]),
                    "url": "",
                    "proxy_url": "",
                }
                for f in files
            ],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags") or 0,
            "application_id": APP_ID,
            "webhook_id": APP_ID,
        }
        self.messages[mid] = message
        return message

    def _edit(self, mid: str, body: dict[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
        message = dict(self.messages.get(mid) or self._message(None, {}, []))
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key]
        if files:
            message["attachments"] = [
                {"id": self.snowflake(), "filename": f["filename"], "size": 1} for f in files
            ]
        message["edited_timestamp"] = "2026-11-22T10:00:01+00:00"
        self.messages[message["id"]] = message
        return message

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if request.content_type.startswith("multipart/"):
            body: dict[str, Any] = {}
            files = []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    files.append({"filename": part.filename, "data": await part.read()})  # type: ignore[union-attr]
            return body, files
        if request.can_read_body:
            return await request.json(), []
        return {}, []

    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        # discord.py parses JSON only when the header is exactly this (no charset).
        return web.Response(body=json.dumps(data).encode(), status=status, headers=JSON_HEADERS)

    def _rate_limit(self, method: str, path: str) -> web.Response | None:
        for key in list(self.rate_limit_once):
            if key[0] == method and path.startswith(key[1]):
                self.rate_limit_once.discard(key)
                self.rate_limited.append(f"{method} {path}")
                return web.Response(
                    body=json.dumps(
                        {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}
                    ).encode(),
                    status=429,
                    # discord.py retries a 429 only when it came through Discord's proxy (Via).
                    headers={
                        **JSON_HEADERS,
                        "Via": "1.1 google",
                        "Retry-After": "1",
                        "X-RateLimit-Scope": "user",
                    },
                )
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path, method = request.path, request.method
        if path == "/" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.gateway(request)
        self.requests.append((method, path))
        if path.startswith("/attachments/"):
            aid = path.split("/")[2]
            if aid in self.attachments:
                return web.Response(body=self.attachments[aid], content_type="application/octet-stream")
            return web.Response(status=404)
        if not path.startswith("/api/v10/"):
            self.unknown.append(f"{method} {path}")
            return self._json({"message": "404: Not Found", "code": 0}, 404)
        limited = self._rate_limit(method, path[len("/api/v10") :])
        if limited is not None:
            return limited
        parts = path[len("/api/v10/") :].split("/")
        body, files = await self._body(request)
        match (method, parts):
            case ("GET", ["users", "@me"]):
                return self._json(BOT_USER)
            case ("GET", ["oauth2", "applications", "@me"]):
                return self._json(
                    {
                        "id": APP_ID,
                        "name": "FieldLens",
                        "icon": None,
                        "description": "",
                        "bot_public": True,
                        "bot_require_code_grant": False,
                        "owner": user(1, "owner"),
                        "team": None,
                        "verify_key": "00",
                        "flags": 0,
                        "summary": "",
                    }
                )
            case ("GET", ["gateway", "bot"]) | ("GET", ["gateway"]):
                return self._json(
                    {
                        "url": f"ws://127.0.0.1:{self.port}",
                        "shards": 1,
                        "session_start_limit": {
                            "total": 1000,
                            "remaining": 999,
                            "reset_after": 0,
                            "max_concurrency": 1,
                        },
                    }
                )
            case ("PUT", ["applications", _, "commands"]) | (
                "PUT",
                ["applications", _, "guilds", _, "commands"],
            ):
                commands = [
                    {**c, "id": self.snowflake(), "application_id": APP_ID, "version": "1"} for c in body
                ]
                return self._json(commands)
            case ("POST", ["interactions", iid, token, "callback"]):
                return self._callback(iid, token, body, files)
            case ("POST", ["webhooks", _, token]):
                return self._followup(token, body, files)
            case ("PATCH", ["webhooks", _, token, "messages", mid]):
                return self._webhook_edit(token, mid, body, files)
            case ("GET", ["webhooks", _, token, "messages", mid]):
                record = self.by_token.get(token)
                if record is None or token in self.expired_tokens:
                    return self._json({"message": "Invalid Webhook Token", "code": 50027}, 401)
                message_id = record.callbacks[0]["message_id"] if mid == "@original" else mid
                return self._json(self.messages[message_id])
            case ("POST", ["channels", cid, "messages"]):
                message = self._message(cid, body, files)
                message["files"] = [f["filename"] for f in files]
                self.channel_messages.append(message)
                return self._json(message)
            case ("PATCH", ["channels", cid, "messages", mid]):
                message = self._edit(mid, body, files)
                self.channel_edits.append((mid, body))
                return self._json(message)
        self.unknown.append(f"{method} {path}")
        return self._json({"message": "404: Not Found", "code": 0}, 404)

    def _callback(
        self, iid: str, token: str, body: dict[str, Any], files: list[dict[str, Any]]
    ) -> web.Response:
        record = self.interactions.get(iid)
        if record is None or record.token != token:
            return self._json({"message": "Unknown interaction", "code": 10062}, 404)
        if record.callbacks:
            self.violations.append(f"interaction {iid} answered twice")
            return self._json({"message": "Interaction has already been acknowledged.", "code": 40060}, 400)
        rtype, data = body["type"], body.get("data") or {}
        entry: dict[str, Any] = {"type": rtype, "data": data, "files": files, "at": time.perf_counter()}
        record.callbacks.append(entry)
        if rtype in (4, 5):
            message = self._message(record.payload.get("channel_id"), data, files)
            entry["message_id"] = message["id"]
        elif rtype == 7:  # update the message the component is on
            message = self._edit(record.payload["message"]["id"], data, files)
            entry["message_id"] = message["id"]
        else:  # 6 deferred update, 8 autocomplete, 9 modal
            return self._json({"interaction": {"id": iid, "type": record.payload["type"]}})
        return self._json(
            {
                "interaction": {
                    "id": iid,
                    "type": record.payload["type"],
                    "response_message_id": message["id"],
                    "response_message_loading": rtype == 5,
                    "response_message_ephemeral": bool(data.get("flags", 0) & 64),
                },
                "resource": {"type": rtype, "message": message},
            }
        )

    def _followup(self, token: str, body: dict[str, Any], files: list[dict[str, Any]]) -> web.Response:
        record = self.by_token.get(token)
        if record is None or token in self.expired_tokens:
            return self._json({"message": "Invalid Webhook Token", "code": 50027}, 401)
        message = self._message(record.payload.get("channel_id"), body, files)
        record.followups.append(message)
        return self._json(message)

    def _webhook_edit(
        self, token: str, mid: str, body: dict[str, Any], files: list[dict[str, Any]]
    ) -> web.Response:
        record = self.by_token.get(token)
        if record is None or token in self.expired_tokens:
            return self._json({"message": "Invalid Webhook Token", "code": 50027}, 401)
        if mid == "@original":
            if not record.callbacks:
                return self._json({"message": "Unknown Message", "code": 10008}, 404)
            mid = record.callbacks[0]["message_id"]
        message = self._edit(mid, body, files)
        record.edits.append(message)
        return self._json(message)

    async def wait_for(self, check: Any, timeout: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"fake Discord: timed out waiting for {what or check}")
