"""A fake Discord on 127.0.0.1 for the real discord.py client: REST, gateway websocket, attachment URLs.

It implements the routes FieldLens uses and records every request. A route it does not know answers
404 and is recorded in `unknown`, which the fixtures assert is empty. Interaction callbacks are
checked to be answered exactly once (a second callback is recorded in `violations`, as Discord
would refuse it).

This module holds the state, the gateway and the interactions it dispatches; the REST routes are in
fake_rest.py, the payloads in fake_payloads.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from testkit.fake_payloads import (
    ADMIN,
    APP_ID,
    EPOCH,
    MEMBER,
    Guild,
    Interaction,
    channel_payload,
    guild_payload,
    member_payload,
    ready_payload,
    user,
)
from testkit.fake_rest import RestRoutes

__all__ = ["ADMIN", "MEMBER", "FakeDiscord", "Guild", "Interaction"]


class FakeDiscord(RestRoutes):
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
                await self._send(ws, "READY", ready_payload(list(self.guilds), self.port))
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

    async def join_guild(self, name: str) -> Guild:
        """Someone adds the bot to a new server: a GUILD_CREATE after READY (discord.py's on_guild_join)."""
        guild = self.add_guild(name)
        payload = self._guild_payload(guild)
        del payload["unavailable"]  # a server the bot has just joined, not one coming back online
        await self.dispatch("GUILD_CREATE", payload)
        return guild

    async def request_reconnect(self) -> None:
        """Discord's op 7: the client should reconnect and resume."""
        for ws in list(self.sockets):
            await ws.send_json({"op": 7, "d": None, "s": None, "t": None})

    _guild_payload = staticmethod(guild_payload)
    _channel = staticmethod(channel_payload)

    # -- interactions --------------------------------------------------------------------------

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
                member=member_payload(uid, name, perms, roles),
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
        """Dispatch `/group sub` (or `/group subgroup sub`) with options (name -> (type, value)) as
        INTERACTION_CREATE."""
        payload = self._base_interaction(4 if autocomplete else 2, guild, uid, name, perms, list(roles))
        opts = [
            {"name": k, "type": t, "value": v, **({"focused": True} if k == autocomplete else {})}
            for k, (t, v) in (options or {}).items()
        ]
        parts = command.split()
        data: dict[str, Any] = {"id": self.snowflake(), "name": parts[0], "type": 1}
        if guild:
            data["guild_id"] = guild.id
        if len(parts) > 2:  # a subcommand of a subcommand group: /model token create
            sub = {"name": parts[2], "type": 1, "options": opts}
            data["options"] = [{"name": parts[1], "type": 2, "options": [sub]}]
        else:
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
        record.sent_at = time.perf_counter()
        return record

    async def wait_for(self, check: Any, timeout: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"fake Discord: timed out waiting for {what or check}")
