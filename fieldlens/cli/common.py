"""What every CLI command shares: settings, services, `--json` output and user errors."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from storage.errors import DatasetRefused, UserError
from storage.services import Services, open_services
from storage.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])
_JSON = "fieldlens.json"


class State:
    """Per-invocation state: settings are read once; services open on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = open_services(self.settings)
        return self._services

    def close(self) -> None:
        if self._services is not None:
            self._services.close()


def json_option(f: F) -> F:
    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta[_JSON] = value
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=remember,
        expose_value=True,
        help="Print a machine-readable JSON answer instead of text.",
    )(f)


def team_option(f: F) -> F:
    return click.option(
        "--team", default="local", show_default=True, help="Team id (a Discord server id, or 'local')."
    )(f)


def emit(data: object, text: str) -> None:
    """Print `data` as JSON when --json was given, else `text`."""
    if click.get_current_context().meta.get(_JSON):
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text)


class FieldLensGroup(click.Group):
    """Turns UserError into a clean message (or JSON) and exit status 1; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as e:
            warnings = e.report if isinstance(e, DatasetRefused) and isinstance(e.report, list) else []
            if ctx.meta.get(_JSON):
                click.echo(json.dumps({"errors": [str(e)], "warnings": warnings}, indent=2))
            else:
                click.echo(f"Error: {e}", err=True)
            sys.exit(1)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def make_state(ctx: click.Context, home: str | None) -> State:
    overrides: dict[str, object] = {"home": home} if home else {}
    settings = load_settings(**overrides)
    setup_logging(settings.log_level)
    state = State(settings)
    ctx.call_on_close(state.close)
    return state
