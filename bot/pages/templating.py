"""The Jinja2 environment of the pages (templates/ beside this file) and how a page is answered."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import markupsafe
from aiohttp import web

from storage.wording import duration

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Pages carry signed links: no caching by others, no referrer to other sites, and only our own scripts.
HEADERS = {
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "--"


def _megabytes(n: object) -> str:
    if not isinstance(n, int | float):
        return "--"
    if n >= 1e6:
        return f"{n / 1e6:.2f} MB"
    return f"{n / 1e3:.1f} KB" if n >= 1e3 else f"{n:.0f} bytes"


def _figure(value: object, pattern: str = "{:.3f}") -> str:
    return pattern.format(value) if isinstance(value, int | float) else "--"


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.filters.update(duration=duration, when=_when, megabytes=_megabytes, figure=_figure)
    env.filters["json"] = _json


def _json(value: object) -> markupsafe.Markup:
    """JSON for a `<script type="application/json">` element: no `<`, `>` or `&` can end it early."""
    text = json.dumps(value, default=str)
    return markupsafe.Markup(  # noqa: S704 - JSON with <, > and & escaped, not HTML
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )


def render_text(app: web.Application, template: str, context: dict[str, Any]) -> str:
    """The page's HTML, on any thread (the context holds plain values; nothing in a template touches
    the database)."""
    return aiohttp_jinja2.get_env(app).get_template(template).render({**context, "app": app})


def html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", headers=HEADERS)


async def render(template: str, request: web.Request, context: dict[str, Any]) -> web.Response:
    """The page as HTML. Jinja2 renders in a thread: the event loop keeps answering slash commands
    meanwhile."""
    return html(await asyncio.to_thread(render_text, request.app, template, context))
