"""The dataset page: counts per label and split, the lint in plain words, and a paged grid of the
images with their boxes drawn, filterable by label and split, near copies and warned images marked.

    GET /datasets/{id}?label=&split=&page=
    GET /datasets/{id}/images/{image_id}.jpg    a thumbnail with boxes drawn
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from bot.pages import access
from bot.pages.templating import render
from bot.pages.thumbnails import Thumbnails, thumbnail_size
from storage.domain import Dataset, ImageRecord, Split
from storage.errors import NotFound
from storage.image_browser import ImageBrowser
from storage.services import Services

PER_PAGE = 24
THUMBNAILS_KEY = web.AppKey("page_thumbnails", Thumbnails)
SPLITS = [str(s) for s in Split]


def _dataset(services: Services, team: str, dataset_id: int) -> Dataset:
    try:
        return services.datasets.get_by_id(team, dataset_id)
    except NotFound:
        raise web.HTTPNotFound(text="No such dataset in this team.") from None


def _page_number(value: str) -> int:
    try:
        return max(1, int(value))
    except ValueError:
        return 1


def dataset_context(
    services: Services, viewer: access.Viewer, dataset_id: int, q: dict[str, str]
) -> dict[str, Any]:
    """What dataset.html shows (on the pages' thread: counting a big dataset's boxes takes a while)."""
    dataset = _dataset(services, viewer.team, dataset_id)
    browser = ImageBrowser(services.db)
    label = q.get("label", "") if q.get("label", "") in dataset.label_counts else ""
    split = q.get("split", "") if q.get("split", "") in SPLITS else ""
    page = browser.page(
        dataset, label or None, Split(split) if split else None, _page_number(q.get("page", "1")), PER_PAGE
    )
    base = f"/datasets/{dataset.id}"
    return {
        "viewer": viewer,
        "dataset": dataset,
        "counts": browser.counts(dataset.id),
        "splits": SPLITS,
        "labels": sorted(dataset.label_counts),
        "label": label,
        "split": split,
        "page": page,
        "cells": [(m, *thumbnail_size(m.image.width, m.image.height)) for m in page.images],
        "base": base,
        "previous": viewer.link(base, label=label, split=split, page=page.page - 1)
        if page.page > 1
        else None,
        "next": viewer.link(base, label=label, split=split, page=page.page + 1)
        if page.page < page.pages
        else None,
    }


async def dataset_page(request: web.Request) -> web.Response:
    viewer = access.viewer(request)
    dataset_id = access.object_id(request, "dataset_id")
    context = await access.reader(request).run(dataset_context, viewer, dataset_id, dict(request.query))
    return await render("dataset.html", request, context)


def _image(
    services: Services, team: str, dataset_id: int, image_id: int
) -> tuple[Dataset, ImageRecord, Path]:
    dataset = _dataset(services, team, dataset_id)
    try:
        image = ImageBrowser(services.db).image(dataset.id, image_id)
    except NotFound:
        raise web.HTTPNotFound(text="No such image in this dataset.") from None
    return dataset, image, services.blobs.path(image.sha256)


async def dataset_image(request: web.Request) -> web.Response:
    viewer = access.viewer(request)
    ids = access.object_id(request, "dataset_id"), access.object_id(request, "image_id")
    dataset, image, path = await access.reader(request).run(_image, viewer.team, *ids)
    data = await request.app[THUMBNAILS_KEY].get(dataset.id, path, image, sorted(dataset.label_counts))
    return web.Response(
        body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )
