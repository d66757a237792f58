"""The model page: a model card (what it was trained on, how good it is float vs int8, thresholds,
size and speed, which robots pulled it) and its downloads per target.

    GET /models/{id}
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.pages import access
from bot.pages.results import results
from bot.pages.templating import render
from storage.domain import Model
from storage.errors import NotFound
from storage.model_folder import CONFIG, FLOAT, INT8, LABELS, MANIFEST, Manifest, ModelFolder
from storage.pulls import PullLog
from storage.services import Services

# Where a model goes, and the files it needs there (in the order of the buttons).
TARGETS = (
    (
        "Limelight 3A, or an FTC robot running its own TFLite code",
        "The 8-bit model and its labels: upload both in the Limelight's neural detector pipeline "
        "(CPU engine, Coral off), or put them beside your OpMode's code.",
        (INT8, LABELS),
    ),
    (
        "Raspberry Pi or another co-processor (fieldlens-edge)",
        "fieldlens-edge pull (below) fetches the model the team promoted (else its newest that passed "
        "the int8 check) with an edge token; or download the two files and run: "
        f"fieldlens-edge run --model {INT8}",
        (INT8, LABELS),
    ),
    (
        "A laptop, to compare or debug",
        "The float model gives the reference detections; the manifest lists every figure and checksum.",
        (FLOAT, MANIFEST),
    ),
)


def _training(services: Services, model: Model) -> dict[str, Any] | None:
    """The job that made the model: its datasets, splits, steps, epochs and time."""
    if model.job_id is None:
        return None
    try:
        job = services.jobs.get(model.team_id, model.job_id)
    except NotFound:
        return None
    plan: dict[str, Any] = job.config.get("plan") or {}  # type: ignore[assignment]
    datasets = []
    for dataset_id in job.dataset_ids:
        try:
            datasets.append((dataset_id, services.datasets.get_by_id(model.team_id, dataset_id).name))
        except NotFound:
            continue
    train = plan.get("train_images") or 0
    return {
        "job": job,
        "datasets": datasets,
        "plan": plan,
        "epochs": job.steps_completed * job.batch_size / train if train else None,
    }


def _downloads(request: web.Request, viewer: access.Viewer, model: Model, manifest: Manifest) -> list[Any]:
    signer = request.app[access.SIGNER_KEY]
    sizes = {entry.path: entry.bytes for entry in manifest.files.values()}
    targets = []
    for title, how, names in TARGETS:
        buttons = [
            {
                "name": n,
                "bytes": sizes.get(n),
                "url": signer.url(viewer.team, model.id, n).removeprefix(signer.base_url),
            }
            for n in names
            if n in sizes or n == MANIFEST
        ]
        targets.append({"title": title, "how": how, "buttons": buttons})
    return targets


async def model_page(request: web.Request) -> web.Response:
    viewer = access.viewer(request)
    services = access.services(request)
    try:
        model = services.models.get(viewer.team, access.object_id(request, "model_id"))
        manifest = ModelFolder(model.path).manifest()
    except (NotFound, OSError):
        raise web.HTTPNotFound(text="No such model in this team.") from None
    signer = request.app[access.SIGNER_KEY]
    figures = results(manifest)
    context = {
        "viewer": viewer,
        "model": model,
        "manifest": manifest,
        "results": figures,
        "training": _training(services, model),
        "files": sorted(manifest.files.values(), key=lambda f: f.path),
        "config_name": CONFIG,
        "pulls": PullLog(services.db).of_model(viewer.team, model.id),
        "targets": _downloads(request, viewer, model, manifest),
        "server": signer.base_url,
        "page_data": {"curves": figures["curves"]},
    }
    return await render("model.html", request, context)
