"""`fieldlens bot`: the Discord bot, its web server, the maintenance scheduler and (unless told not
to) an embedded worker thread that runs training jobs in child processes. With FIELDLENS_BROKER_URL
set, jobs run on remote workers instead, and the bot starts `fieldlens control` beside itself."""

from __future__ import annotations

import threading

import click

from fieldlens.cli.common import State


@click.command("bot")
@click.option(
    "--no-worker", is_flag=True, help="Do not run jobs here (run `fieldlens worker` beside it instead)."
)
@click.option("--no-sync", is_flag=True, help="Do not sync slash commands with Discord at start-up.")
@click.pass_obj
def bot(state: State, no_worker: bool, no_sync: bool) -> None:
    """Run the Discord bot (needs FIELDLENS_DISCORD_TOKEN)."""
    from bot.client import FieldLensBot
    from storage.maintenance import start_scheduler

    token = state.settings.require_discord_token()
    scheduler = start_scheduler(state.settings)
    worker = control = None
    if state.settings.broker_url:
        import multiprocessing

        from cluster.control import run_control

        # The control queue's consumer, in its own process (Celery's worker owns its signals).
        control = multiprocessing.get_context("spawn").Process(
            target=run_control, args=(state.settings, False), name="fieldlens-control", daemon=True
        )
        control.start()
    elif not no_worker:
        from trainer.worker import Worker  # imports no TensorFlow; its child processes do

        worker = Worker(state.settings)
        threading.Thread(target=worker.run, name="fieldlens-worker", daemon=True).start()
    try:
        FieldLensBot(state.settings, sync=not no_sync).run(token, log_handler=None)
    finally:
        if worker is not None:
            worker.stop()
        if control is not None:
            control.terminate()
        scheduler.shutdown(wait=False)
