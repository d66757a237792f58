"""`fieldlens budget ...`, `fieldlens worker ...` and `fieldlens control`: the training minutes and the
machines that train."""

from __future__ import annotations

import sys

import click

from fieldlens.cli.common import State, emit, json_option, team_option
from storage.settings import Settings


@click.group()
def budget() -> None:
    """Training minutes: what is left, and grants."""


@budget.command("show")
@team_option
@json_option
@click.pass_obj
def show(state: State, team: str, as_json: bool) -> None:
    """The team's minutes left and every ledger line behind the number."""
    b = state.services.budget
    entries = b.entries(team)
    left = b.balance(team)
    data = {
        "team": team,
        "minutes_left": left,
        "ledger": [
            {"at": e.at.isoformat(), "minutes": e.minutes, "reason": e.reason, "job_id": e.job_id}
            for e in entries
        ],
    }
    lines = [f"{e.at:%Y-%m-%d %H:%M}  {e.minutes:>+8g}  {e.reason}" for e in entries]
    emit(data, "\n".join([*lines, f"Minutes left: {left:g}"]))


@budget.command("grant")
@click.argument("team_id")
@click.argument("minutes", type=int)
@click.option("--reason", default="", help="Why (kept in the ledger).")
@json_option
@click.pass_obj
def grant(state: State, team_id: str, minutes: int, reason: str, as_json: bool) -> None:
    """Admin: give team TEAM_ID MINUTES more training minutes."""
    left = state.services.budget.grant(team_id, minutes, reason)
    emit({"team": team_id, "minutes_left": left}, f"Granted {minutes} min to {team_id}; {left:g} min left.")


@click.group(invoke_without_command=True)
@click.option("--slots", type=click.IntRange(1, 16), default=1, show_default=True, help="Jobs at a time.")
@click.option("--gpus", default="", help="GPU ids to use, one job on each (e.g. 0,1); overrides --slots.")
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit when the queue is empty.")
@click.option(
    "--broker",
    default=None,
    help="Redis URL of the Celery broker: be a remote worker (default: $FIELDLENS_BROKER_URL; unset, "
    "run jobs from this machine's database).",
)
@click.pass_context
def worker(ctx: click.Context, slots: int, gpus: str, once: bool, broker: str | None) -> None:
    """Run training jobs until interrupted: from this machine's queue, or from the broker's."""
    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    gpu_ids = [g.strip() for g in gpus.split(",") if g.strip()]
    settings = state.settings.model_copy(update={"broker_url": broker}) if broker else state.settings
    if settings.broker_url:
        from cluster.workers import launch

        if once:
            raise click.UsageError("--once is for the embedded worker; a broker worker runs until stopped.")
        base = [sys.executable, "-m", "fieldlens", "--home", str(settings.home), "worker"]
        sys.exit(launch(settings, gpu_ids, [*base, "--broker", settings.broker_url]))
    _embedded_worker(state, slots, gpu_ids, once)


def _embedded_worker(state: State, slots: int, gpus: list[str], once: bool) -> None:
    import signal

    from storage.maintenance import start_scheduler
    from trainer.worker import Worker

    w = Worker(state.settings, slots=slots, gpus=gpus)
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    scheduler = start_scheduler(state.settings)
    click.echo(f"Worker {w.worker_id} waiting for jobs in {state.settings.home} (Ctrl-C stops).", err=True)
    try:
        ran = w.run(exit_when_idle=once)
    except KeyboardInterrupt:
        w.stop()
        ran = 0
    finally:
        scheduler.shutdown(wait=False)
    click.echo(f"Worker stopped after {ran} job(s).", err=True)


def _broker_settings(state: State) -> Settings:
    if not state.settings.broker_url:
        raise click.ClickException(
            "FIELDLENS_BROKER_URL is not set: this FieldLens runs its jobs on its embedded worker. "
            "Set it to the Redis URL the remote workers use (see the README, Run it for many teams)."
        )
    return state.settings


@worker.command("list")
@json_option
@click.pass_obj
def list_(state: State, as_json: bool) -> None:
    """Remote workers: each one's GPU, its job and its last heartbeat."""
    from cluster.workers import list_workers

    settings = _broker_settings(state)
    workers = list_workers(settings, state.services.jobs.active_by_worker())
    lines = [
        f"{w['name']}  {'GPU ' + w['gpu'] if w['gpu'] is not None else 'CPU'}  "
        f"{'job ' + str(w['job']) if w['job'] else 'idle'}  "
        f"last heartbeat {w['last_heartbeat_seconds_ago']:g} s ago"
        f"{'' if w['alive'] else ' (silent: gone?)'}{' (draining)' if w['draining'] else ''}"
        for w in workers
    ]
    emit(
        workers,
        "\n".join(lines)
        or "No remote worker has reported yet. Start one with `fieldlens worker --broker URL`.",
    )


@worker.command("drain")
@click.argument("name")
@json_option
@click.pass_obj
def drain_(state: State, name: str, as_json: bool) -> None:
    """Let worker NAME finish its job and take no new one (then stop it safely)."""
    from cluster.workers import drain

    if not drain(_broker_settings(state), name):
        raise click.ClickException(
            f"No worker named {name} answered. See the names with `fieldlens worker list`."
        )
    emit({"name": name, "draining": True}, f"{name} takes no new job; stop it once its job has ended.")


@click.command()
@click.pass_obj
def control(state: State) -> None:
    """On the bot's machine: write what remote workers report into the database, and send them jobs."""
    from cluster.control import run_control

    run_control(_broker_settings(state))
