"""`fieldlens serve`: the web server (robots' model pulls, download links, the team pages) without
the Discord bot; `fieldlens dashboard`: a signed link to a team's pages."""

from __future__ import annotations

import click
from aiohttp import web

from fieldlens.cli.common import State, emit, json_option, team_option
from storage.settings import MissingSecret


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@team_option
@click.pass_obj
def serve(state: State, host: str, port: int, team: str) -> None:
    """Serve models to `fieldlens-edge pull` (token-authenticated) and the team pages (signed links)."""
    from bot.links import LinkSigner
    from bot.web import AccessLogger, make_app

    signer = LinkSigner.from_settings(state.settings)
    services = state.services
    if state.settings.web_secret is None:
        click.echo("FIELDLENS_WEB_SECRET is not set: page links work until this server stops.", err=True)
    click.echo(f"Pages of team {team}: {signer.page_url(team, '/dashboard')}", err=True)
    web.run_app(
        make_app(services.models, signer, services),
        host=host,
        port=port,
        print=lambda text: click.echo(text, err=True),
        access_log_class=AccessLogger,
    )


@click.command()
@team_option
@json_option
@click.pass_obj
def dashboard(state: State, team: str, as_json: bool) -> None:
    """A fresh signed link to the team's pages (the web server must share FIELDLENS_WEB_SECRET)."""
    from bot.links import LinkSigner

    if state.settings.web_secret is None:
        raise MissingSecret(
            "FIELDLENS_WEB_SECRET is not set, so no link made here would match the web server's. Set the "
            "same secret for `fieldlens bot` (or `fieldlens serve`) and this command."
        )
    url = LinkSigner.from_settings(state.settings).page_url(team, "/dashboard")
    emit({"team": team, "url": url, "minutes": state.settings.page_link_minutes}, url)
