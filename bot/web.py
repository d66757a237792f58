"""The bot's web server: routes robots use to pull their team's latest delivered model.

    GET /api/v1/models/latest                     -> manifest JSON (see edge/pull.py)
    GET /api/v1/models/{id}/files/{name}          -> model_int8.tflite or labels.txt

    GET /download/{id}/{name}?team=&expires=&sig=  -> a model file, through a signed expiring link

Model routes need `Authorization: Bearer <edge token>`; the token names the team, and a team only
ever sees its own models (another team's model id answers 404, like a missing one). Download links
are signed by the bot (HMAC) for one team, model and file, and expire.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

from bot.links import LinkSigner
from storage.errors import NotFound
from storage.models import EDGE_FILES, ModelStore

log = logging.getLogger(__name__)
MODELS_KEY = web.AppKey("models", ModelStore)
SIGNER_KEY = web.AppKey("signer", LinkSigner)
DOWNLOAD_FILES = {*EDGE_FILES.values(), "model_float.tflite", "manifest.json"}


def _team(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    team = request.app[MODELS_KEY].team_for_token(token) if token else None
    if team is None:
        raise web.HTTPUnauthorized(text="missing or unknown edge token")
    return team


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


async def latest_model(request: web.Request) -> web.Response:
    team = _team(request)
    try:
        model = request.app[MODELS_KEY].latest(team)
    except NotFound:
        raise web.HTTPNotFound(text="no delivered model yet") from None
    files = _manifest(Path(model.path))["files"]
    return web.json_response(
        {
            "model_id": model.id,
            "name": model.name,
            "labels": model.labels,
            "files": {
                key: {**files[key], "url": f"/api/v1/models/{model.id}/files/{name}"}
                for key, name in EDGE_FILES.items()
            },
        }
    )


async def model_file(request: web.Request) -> web.StreamResponse:
    team = _team(request)
    name = request.match_info["name"]
    if name not in EDGE_FILES.values():
        raise web.HTTPNotFound()
    try:
        model = request.app[MODELS_KEY].get(team, int(request.match_info["model_id"]))
    except (NotFound, ValueError):
        raise web.HTTPNotFound() from None
    return web.FileResponse(Path(model.path) / name)


async def signed_download(request: web.Request) -> web.StreamResponse:
    q = request.query
    name = request.match_info["name"]
    try:
        model_id = int(request.match_info["model_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    signer = request.app.get(SIGNER_KEY)
    team = q.get("team", "")
    if signer is None or not signer.check(team, model_id, name, q.get("expires", ""), q.get("sig", "")):
        raise web.HTTPForbidden(
            text="this download link is invalid or has expired; ask the bot for a new one"
        )
    if name not in DOWNLOAD_FILES:
        raise web.HTTPNotFound()
    try:
        model = request.app[MODELS_KEY].get(team, model_id)
    except NotFound:
        raise web.HTTPNotFound() from None
    return web.FileResponse(
        Path(model.path) / name, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def make_app(models: ModelStore, signer: LinkSigner | None = None) -> web.Application:
    app = web.Application()
    app[MODELS_KEY] = models
    if signer is not None:
        app[SIGNER_KEY] = signer
    app.router.add_get("/api/v1/models/latest", latest_model)
    app.router.add_get("/api/v1/models/{model_id}/files/{name}", model_file)
    app.router.add_get("/download/{model_id}/{name}", signed_download)
    return app
