"""`fieldlens demo`: the main job on the embedded defaults, no Discord needed."""

from __future__ import annotations

import click

from fieldlens.cli.common import State, emit, json_option
from fieldlens.cli.dataset import format_report
from storage.errors import NameTaken
from storage.voc.synth import make_voc_zip

DEMO_DATASET = "demo-shapes"


@click.command()
@click.option(
    "--images",
    default=120,
    show_default=True,
    type=click.IntRange(10, 10_000),
    help="Synthetic images in the sample dataset.",
)
@json_option
@click.pass_obj
def demo(state: State, images: int, as_json: bool) -> None:
    """Run the pipeline on a synthetic sample dataset in the local team."""
    services = state.services
    home = state.settings.home
    zip_path = home / "samples" / f"{DEMO_DATASET}.zip"
    make_voc_zip(zip_path, images=images, seed=7)
    try:
        report = services.datasets.add("local", DEMO_DATASET, zip_path)
        click.echo(f"Ingested sample dataset from {zip_path}", err=True)
    except NameTaken:
        report = services.datasets.report("local", DEMO_DATASET)
        click.echo(f"Sample dataset {DEMO_DATASET!r} already stored in {home}", err=True)
    preview_path = home / "samples" / f"{DEMO_DATASET}-preview.png"
    preview_path.write_bytes(services.datasets.preview("local", DEMO_DATASET))
    emit(
        {"dataset": report.to_json(), "preview": str(preview_path)},
        format_report(report) + f"\n\nPreview: {preview_path}",
    )
