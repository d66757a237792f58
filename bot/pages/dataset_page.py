"""The dataset page: counts per label and split, the lint in plain words, and a paged grid of the
images with their boxes drawn, filterable by label and split, near copies and warned images marked.

    GET /datasets/{id}?label=&split=&page=
    GET /datasets/{id}/images/{image_id}.jpg    a thumbnail with boxes drawn
"""

from __future__ import annotations

from aiohttp import web

from bot.pages import access
from bot.pages.templating import render
from bot.pages.thumbnails import Thumbnails, thumbnail_size
from storage.domain import Dataset, Split
from storage.errors import NotFound
from storage.image_browser import ImageBrowser

PER_PAGE = 24
THUMBNAILS_KEY = web.AppKey("page_thumbnails", Thumbnails)
SPLITS = [str(s) for s in Split]


def _dataset(request: web.Request) -> tuple[access.Viewer, Dataset]:
    viewer = access.viewer(request)
    try:
        dataset_id = access.object_id(request, "dataset_id")
        return viewer, access.services(request).datasets.get_by_id(viewer.team, dataset_id)
    except NotFound:
        raise web.HTTPNotFound(text="No such dataset in this team.") from None


def _page_number(value: str) -> int:
    try:
        return max(1, int(value))
    except ValueError:
        return 1


async def dataset_page(request: web.Request) -> web.Response:
    viewer, dataset = _dataset(request)
    browser = ImageBrowser(access.services(request).db)
    q = request.query
    label = q.get("label", "") if q.get("label", "") in dataset.label_counts else ""
    split = q.get("split", "") if q.get("split", "") in SPLITS else ""
    page = browser.page(
        dataset, label or None, Split(split) if split else None, _page_number(q.get("page", "1")), PER_PAGE
    )
    base = f"/datasets/{dataset.id}"
    context = {
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
    return await render("dataset.html", request, context)


async def dataset_image(request: web.Request) -> web.Response:
    _, dataset = _dataset(request)
    services = access.services(request)
    try:
        image = ImageBrowser(services.db).image(dataset.id, access.object_id(request, "image_id"))
    except NotFound:
        raise web.HTTPNotFound(text="No such image in this dataset.") from None
    thumbnails = request.app[THUMBNAILS_KEY]
    data = await thumbnails.get(
        dataset.id, services.blobs.path(image.sha256), image, sorted(dataset.label_counts)
    )
    return web.Response(
        body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )
