"""The bot's web server: routes robots use to pull their team's model.

    GET /api/v1/models/latest                     -> manifest JSON (see edge/pull.py) of the model a
                                                     robot gets: the promoted one, else the newest
                                                     that passed the int8 check (storage/models.py)
    GET /api/v1/models/{id}/files/{name}          -> a file a robot needs (the int8 model, labels);
                                                     never of a flagged model

    GET /download/{id}/{name}?team=&expires=&sig=  -> a model file, or a robot target's zip
                                                     (`limelight.zip`...), through a signed expiring link
    GET /dashboard, /jobs/{id}, /models/{id}, ...   -> the team pages (bot/pages/), through signed links

Model routes need `Authorization: Bearer <edge token>`; the token names the team, and a team only
ever sees its own models (another team's model id answers 404, like a missing one). Download links
are signed by the bot (HMAC) for one team, model and file, and expire.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.links import LinkSigner
from bot.pages import add_pages
from storage.errors import NotFound
from storage.model_folder import DOWNLOADABLE, EDGE_FILES, ModelFolder
from storage.models import ModelStore
from storage.pulls import PullLog
from storage.services import Services
from storage.targets import target_of_zip, target_zip, zip_name

log = logging.getLogger(__name__)
MODELS_KEY = web.AppKey("models", ModelStore)
SIGNER_KEY = web.AppKey("signer", LinkSigner)


class AccessLogger(AbstractAccessLogger):
    """Request lines without their query: a signed link in a log would open a team's pages."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.3f s", request.remote, request.method, request.path, response.status, time
        )


def _team(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    team = request.app[MODELS_KEY].team_for_token(token) if token else None
    if team is None:
        raise web.HTTPUnauthorized(text="missing or unknown edge token")
    return team


async def latest_model(request: web.Request) -> web.Response:
    team = _team(request)
    try:
        model = request.app[MODELS_KEY].servable(team)
    except NotFound:
        raise web.HTTPNotFound(text="no model a robot may get yet (none passed the int8 check)") from None
    manifest = ModelFolder(model.path).manifest()
    thresholds = manifest.thresholds
    return web.json_response(
        {
            "model_id": model.id,
            "name": model.name,
            "labels": model.labels,
            "created_at": manifest.created_at,
            "promoted": model.promoted,
            "map50_int8": manifest.metrics.map50_int8,
            "map50_95_int8": manifest.metrics.map50_95_int8,
            "thresholds": json.loads(thresholds.packed()) if thresholds else None,
            "files": {
                key: {**asdict(manifest.files[key]), "url": f"/api/v1/models/{model.id}/files/{name}"}
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
    if model.flagged:
        raise web.HTTPNotFound(text="this model failed the int8 check; robots never get it")
    if name == EDGE_FILES["int8"]:  # a robot pulling the model: the model page lists it
        token = request.headers["Authorization"].removeprefix("Bearer ").strip()
        PullLog(request.app[MODELS_KEY].db).record(
            model.id, token, request.remote or "", request.headers.get("User-Agent", "")
        )
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
    target = target_of_zip(name)
    if name not in DOWNLOADABLE and target is None:
        raise web.HTTPNotFound()
    try:
        model = request.app[MODELS_KEY].get(team, model_id)
    except NotFound:
        raise web.HTTPNotFound() from None
    if target is not None:
        data = await asyncio.to_thread(target_zip, ModelFolder(model.path), target, model.id, model.name)
        disposition = f'attachment; filename="{zip_name(model.id, target)}"'
        return web.Response(
            body=data, content_type="application/zip", headers={"Content-Disposition": disposition}
        )
    return web.FileResponse(
        Path(model.path) / name, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def make_app(
    models: ModelStore, signer: LinkSigner | None = None, services: Services | None = None
) -> web.Application:
    """The routes above; with `services` and a `signer`, also the team pages (bot/pages/)."""
    app = web.Application()
    app[MODELS_KEY] = models
    if signer is not None:
        app[SIGNER_KEY] = signer
    if signer is not None and services is not None:
        add_pages(app, services, signer)
    app.router.add_get("/api/v1/models/latest", latest_model)
    app.router.add_get("/api/v1/models/{model_id}/files/{name}", model_file)
    app.router.add_get("/download/{model_id}/{name}", signed_download)
    return app
