"""`fieldlens budget ...` and `fieldlens worker`: the training minutes and the machines that train."""

from __future__ import annotations

import click

from fieldlens.cli.common import State, emit, json_option, team_option


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


@click.command()
@click.option("--slots", type=click.IntRange(1, 16), default=1, show_default=True, help="Jobs at a time.")
@click.option("--gpus", default="", help="GPU ids to use, one job on each (e.g. 0,1); overrides --slots.")
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit when the queue is empty.")
@click.pass_obj
def worker(state: State, slots: int, gpus: str, once: bool) -> None:
    """Run queued training jobs, each in its own process, until interrupted."""
    import signal

    from storage.maintenance import start_scheduler
    from trainer.worker import Worker

    w = Worker(state.settings, slots=slots, gpus=[g.strip() for g in gpus.split(",") if g.strip()])
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
