"""The bot's web server: routes robots use to pull their team's latest delivered model.

    GET /api/v1/models/latest                     -> manifest JSON (see edge/pull.py)
    GET /api/v1/models/{id}/files/{name}          -> model_int8.tflite or labels.txt

Every request carries `Authorization: Bearer <edge token>`; the token names the team, and a team
only ever sees its own models (another team's model id answers 404, like a missing one).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

from storage.errors import NotFound
from storage.models import EDGE_FILES, ModelStore

log = logging.getLogger(__name__)
MODELS_KEY = web.AppKey("models", ModelStore)


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


def make_app(models: ModelStore) -> web.Application:
    app = web.Application()
    app[MODELS_KEY] = models
    app.router.add_get("/api/v1/models/latest", latest_model)
    app.router.add_get("/api/v1/models/{model_id}/files/{name}", model_file)
    return app
