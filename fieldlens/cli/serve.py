"""`fieldlens serve`: the web server robots pull models from, without the Discord bot."""

from __future__ import annotations

import click
from aiohttp import web

from fieldlens.cli.common import State


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.pass_obj
def serve(state: State, host: str, port: int) -> None:
    """Serve each team's latest model to `fieldlens-edge pull` (token-authenticated)."""
    from bot.web import make_app

    web.run_app(
        make_app(state.services.models), host=host, port=port, print=lambda text: click.echo(text, err=True)
    )
