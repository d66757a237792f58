"""The team's dashboard: its jobs, models and datasets, each linked to its page.

GET /dashboard
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.pages import access
from bot.pages.templating import render
from storage.services import Services


def dashboard_context(services: Services, viewer: access.Viewer) -> dict[str, Any]:
    return {
        "viewer": viewer,
        "team": services.teams.get(viewer.team),
        "jobs": services.jobs.list_team(viewer.team, limit=50),
        "models": services.models.list_team(viewer.team)[::-1],
        "datasets": services.datasets.list_team(viewer.team),
    }


async def dashboard(request: web.Request) -> web.Response:
    viewer = access.viewer(request)
    context = await access.reader(request).run(dashboard_context, viewer)  # off the event loop
    return await render("dashboard.html", request, context)
