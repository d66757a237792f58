"""The `fieldlens` command. Each command's module loads only when that command runs.

`fieldlens dataset add` is timed end to end (bench/ingest.py), so its start-up must not pay for the
bot, the web server or TensorFlow: the group below imports a command's module on first use.
"""

from __future__ import annotations

import gc
import importlib

import click

from fieldlens.cli.common import FieldLensGroup, make_state, old_name
from storage import __version__

# name -> (module, attribute); `train` also gathers the job commands (see _train).
_COMMANDS = {
    "dataset": ("fieldlens.cli.dataset", "dataset"),
    "demo": ("fieldlens.cli.demo", "demo"),
    "train": ("fieldlens.cli.train", "train"),
    "model": ("fieldlens.cli.train", "model"),
    "serve": ("fieldlens.cli.serve", "serve"),
    "dashboard": ("fieldlens.cli.serve", "dashboard"),
    "job": ("fieldlens.cli.jobs", "job"),
    "budget": ("fieldlens.cli.service", "budget"),
    "worker": ("fieldlens.cli.service", "worker"),
    "control": ("fieldlens.cli.service", "control"),
    "bot": ("fieldlens.cli.bot", "bot"),
}


def _load(name: str) -> click.Command:
    module, attr = _COMMANDS[name]
    command: click.Command = getattr(importlib.import_module(module), attr)
    if name == "train":  # `fieldlens train ...` says what `/train ...` says; `job ...` is the old name
        from fieldlens.cli.jobs import job

        assert isinstance(command, click.Group)
        for sub, cmd in job.commands.items():
            command.commands.setdefault(sub, cmd)
    if isinstance(command, click.Group) and name in ("dataset", "model") and "show" not in command.commands:
        command.add_command(old_name(command.commands["info"], "show"))
    return command


class LazyGroup(FieldLensGroup):
    """A group whose subcommands are imported when they are looked up, not at start-up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return _load(cmd_name) if cmd_name in _COMMANDS else None

    def all_commands(self) -> dict[str, click.Command]:
        """Every subcommand, loaded (for documentation and its tests)."""
        return {name: _load(name) for name in sorted(_COMMANDS)}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home", type=click.Path(file_okay=False), help="Data folder (default: $FIELDLENS_HOME or ~/.fieldlens)."
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Show every log line, TensorFlow's and the converter's included."
)
@click.version_option(__version__, prog_name="fieldlens")
@click.pass_context
def cli(ctx: click.Context, home: str | None, verbose: bool) -> None:
    """FieldLens: teach your robot to see.

    Upload a Pascal VOC dataset, train an SSD MobileNet v2 detector, and get a verified
    int8 .tflite for your robot. Start with `fieldlens demo`.
    """
    ctx.obj = make_state(ctx, home, verbose)


def main() -> None:
    try:
        cli(prog_name="fieldlens")
    finally:
        # Everything left is about to go with the process: spare the interpreter's last full garbage
        # collection (0.13-0.18 s after a dataset import, measured by bench/ingest.py).
        gc.freeze()


def subcommands(group: click.Group) -> dict[str, click.Command]:
    """A group's subcommands, the lazily loaded top level included (for docs and their tests)."""
    return group.all_commands() if isinstance(group, LazyGroup) else dict(group.commands)
