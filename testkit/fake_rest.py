"""The fake Discord's REST side: the routes FieldLens calls, answered as Discord would.

A route it does not know answers 404 and is recorded in `unknown`; a second callback to one
interaction is recorded in `violations` (Discord would refuse it). The state lives in FakeDiscord.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from aiohttp import BodyPartReader, web

from testkit.fake_payloads import APP_ID, BOT_USER, JSON_HEADERS, Interaction, user


class RestRoutes:
    """Mixed into FakeDiscord, whose __init__ sets these."""

    interactions: dict[str, Interaction]
    by_token: dict[str, Interaction]
    messages: dict[str, dict[str, Any]]
    channel_messages: list[dict[str, Any]]
    channel_edits: list[tuple[str, dict[str, Any]]]
    attachments: dict[str, bytes]
    expired_tokens: set[str]
    rate_limit_once: set[tuple[str, str]]
    rate_limited: list[str]
    requests: list[tuple[str, str]]
    unknown: list[str]
    violations: list[str]
    port: int

    def snowflake(self) -> str:
        raise NotImplementedError

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        raise NotImplementedError

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
                assert isinstance(part, BodyPartReader), "discord.py sends flat form-data, no nested parts"
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    files.append({"filename": part.filename, "data": await part.read()})
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
                commands = [  # this route's body is a JSON array: the commands to register
                    {**c, "id": self.snowflake(), "application_id": APP_ID, "version": "1"}
                    for c in cast(list[dict[str, Any]], body)
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
                message["allowed_mentions"] = body.get("allowed_mentions")
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
            if rtype == 6 and "message" in record.payload:  # later edits of @original edit that message
                entry["message_id"] = record.payload["message"]["id"]
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
