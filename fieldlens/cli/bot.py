"""`fieldlens bot`: the Discord bot, its web server, the maintenance scheduler and (unless told not
to) an embedded worker thread that runs training jobs in child processes."""

from __future__ import annotations

import threading

import click

from fieldlens.cli.common import State


@click.command("bot")
@click.option("--no-worker", is_flag=True, help="Do not run jobs here (run `fieldlens worker` elsewhere).")
@click.option("--no-sync", is_flag=True, help="Do not sync slash commands with Discord at start-up.")
@click.pass_obj
def bot(state: State, no_worker: bool, no_sync: bool) -> None:
    """Run the Discord bot (needs FIELDLENS_DISCORD_TOKEN)."""
    from bot.client import FieldLensBot
    from storage.maintenance import start_scheduler

    token = state.settings.require_discord_token()
    scheduler = start_scheduler(state.settings)
    worker = None
    if not no_worker:
        from trainer.worker import Worker  # imports no TensorFlow; its child processes do

        worker = Worker(state.settings)
        threading.Thread(target=worker.run, name="fieldlens-worker", daemon=True).start()
    try:
        FieldLensBot(state.settings, sync=not no_sync).run(token, log_handler=None)
    finally:
        if worker is not None:
            worker.stop()
        scheduler.shutdown(wait=False)
