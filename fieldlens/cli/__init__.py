"""The `fieldlens` command. Heavy modules (TensorFlow) load only inside the commands that need them."""

from __future__ import annotations

import click

from fieldlens import __version__
from fieldlens.cli.bot import bot
from fieldlens.cli.common import FieldLensGroup, make_state
from fieldlens.cli.dataset import dataset
from fieldlens.cli.demo import demo
from fieldlens.cli.jobs import budget, job, worker
from fieldlens.cli.serve import serve
from fieldlens.cli.train import model, train


@click.group(cls=FieldLensGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home", type=click.Path(file_okay=False), help="Data folder (default: $FIELDLENS_HOME or ~/.fieldlens)."
)
@click.version_option(__version__, prog_name="fieldlens")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """FieldLens: teach your robot to see.

    Upload a Pascal VOC dataset, train an SSD MobileNet v2 detector, and get a verified
    int8 .tflite for your robot. Start with `fieldlens demo`.
    """
    ctx.obj = make_state(ctx, home)


cli.add_command(dataset)
cli.add_command(demo)
cli.add_command(train)
cli.add_command(model)
cli.add_command(serve)
cli.add_command(job)
cli.add_command(budget)
cli.add_command(worker)
cli.add_command(bot)


def main() -> None:
    cli(prog_name="fieldlens")
