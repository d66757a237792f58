"""The team's dashboard: its jobs, models and datasets, each linked to its page.

GET /dashboard
"""

from __future__ import annotations

from aiohttp import web

from bot.pages import access
from bot.pages.templating import render


async def dashboard(request: web.Request) -> web.Response:
    viewer = access.viewer(request)
    services = access.services(request)
    context = {
        "viewer": viewer,
        "team": services.teams.get(viewer.team),
        "jobs": services.jobs.list_team(viewer.team, limit=50),
        "models": services.models.list_team(viewer.team)[::-1],
        "datasets": services.datasets.list_team(viewer.team),
    }
    return await render("dashboard.html", request, context)
