"""`fieldlens demo`: the main job on the embedded defaults, no Discord needed.

Makes a synthetic sample dataset, ingests it into the local team, trains a small detector on it,
exports and verifies the int8 model, and prints the metrics.
"""

from __future__ import annotations

from pathlib import Path

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
@click.option(
    "--steps",
    default=300,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Training steps of the demo model (0: ingest only).",
)
@json_option
@click.pass_obj
def demo(state: State, images: int, steps: int, as_json: bool) -> None:
    """Run the whole pipeline on a synthetic sample dataset in the local team."""
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
    result: dict[str, object] = {"dataset": report.to_json(), "preview": str(preview_path)}
    text = format_report(report) + f"\n\nPreview: {preview_path}"
    if steps:
        model, summary = _train(state, steps, home / "models" / "demo")
        result["model"] = model
        text += "\n\n" + summary
    emit(result, text)


def _train(state: State, steps: int, out: Path) -> tuple[dict[str, object], str]:
    """A small, fast configuration: 160 px input, MobileNetV2 width 0.35, from scratch."""
    from fieldlens.cli.train import Progress
    from trainer.config import TrainConfig
    from trainer.pipeline import load_data, plan, train_and_deliver

    label_map, data = load_data(state.services, "local", [DEMO_DATASET], state.settings.home / "cache")
    config = TrainConfig(
        labels=label_map.labels,
        steps=steps,
        batch_size=16,
        input_size=160,
        alpha=0.35,
        weights="none",
        learning_rate=0.003,
        warmup_steps=30,
    )
    p = plan(config, len(data.train), len(data.val))
    click.echo(
        f"Training a demo {config.model} (160 px, width 0.35) for {steps} steps = {p.epochs:.0f} epochs "
        f"of {p.train_images} images...",
        err=True,
    )
    train_result, manifest = train_and_deliver(config, data, out / "training", out, Progress(True))
    click.echo("", err=True)
    m = manifest["metrics"]
    model = {
        "path": str(out),
        "steps_completed": train_result.steps_completed,
        "map50_float": m["map50_float"],
        "map50_int8": m["map50_int8"],
        "map50_95_int8": m["map50_95_int8"],
        "verdict": manifest["verdict"],
        "advice": manifest["advice"],
    }
    summary = "\n".join(
        [
            f"Demo model: {train_result.steps_completed} steps in {train_result.seconds:.0f} s "
            f"({train_result.images_per_second:.0f} images/s).",
            manifest["verdict"],
            f"mAP@0.5:0.95 int8 {m['map50_95_int8']:.3f}; files in {out} "
            "(model_int8.tflite, labels.txt, manifest.json).",
            *(f"  - {a}" for a in manifest["advice"]),
        ]
    )
    return model, summary
