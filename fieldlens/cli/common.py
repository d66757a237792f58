"""What every CLI command shares: settings, services, `--json` output and user errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from fieldlens.cli import terminal
from storage.domain import LOCAL_TEAM, Job
from storage.errors import DatasetRefused, UserError
from storage.services import Services, open_services
from storage.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])
_JSON = "fieldlens.json"


class State:
    """Per-invocation state: settings are read once; services open on first use."""

    def __init__(self, settings: Settings, verbose: bool = False) -> None:
        self.settings = settings
        self.verbose = verbose
        self._services: Services | None = None

    def quiet(self, command: str) -> None:
        """For commands a person watches: no library chatter or INFO lines unless --verbose."""
        restore = terminal.quiet(self.verbose, self.settings.home / "logs" / f"{command}.log")
        click.get_current_context().call_on_close(restore)

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
        "--team",
        default=LOCAL_TEAM,
        show_default=True,
        help=f"Team id (a Discord server id, or '{LOCAL_TEAM}').",
    )(f)


def old_name(command: click.Command, name: str) -> click.Command:
    """A hidden copy of `command` under the name it had before the CLI and the bot shared one vocabulary."""
    return click.Command(
        name, callback=command.callback, params=command.params, help=command.help, hidden=True
    )


def emit(data: object, text: str) -> None:
    """Print `data` as JSON when --json was given, else `text`."""
    if click.get_current_context().meta.get(_JSON):
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text)


def job_json(job: Job, progress: dict[str, object] | None = None) -> dict[str, object]:
    """A job as `--json` prints it."""
    return {
        "id": job.id,
        "team": job.team_id,
        "state": str(job.state),
        "model": job.model,
        "datasets": job.dataset_ids,
        "description": job.description,
        "steps": job.steps,
        "batch_size": job.batch_size,
        "max_minutes": job.max_minutes,
        "steps_completed": job.steps_completed,
        "training_seconds": round(job.training_seconds, 1),
        "metrics": job.metrics,
        "progress": progress or {},
        "plan": job.config.get("plan", {}),
        "error": job.error,
        "model_id": job.model_id,
        "from_model_id": job.from_model_id,
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


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


def make_state(ctx: click.Context, home: str | None, verbose: bool = False) -> State:
    overrides: dict[str, object] = {"home": home} if home else {}
    settings = load_settings(**overrides)
    terminal.setup_logging(settings.log_level)
    state = State(settings, verbose)
    ctx.call_on_close(state.close)
    return state
