"""`fieldlens train run` and `fieldlens model show`: train in the foreground, then export and verify."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from fieldlens.cli.common import State, emit, json_option, team_option
from fieldlens.cli.model_robot import compare, export, model_of, promote, token
from fieldlens.cli.terminal import StepBar, TrainingBar
from storage.errors import UserError
from storage.model_folder import ModelFolder
from storage.plan import DEFAULT_MODEL, MODELS, make_plan
from storage.wording import EPOCH_SENTENCE


@click.group()
def train() -> None:
    """Train detectors: queue jobs for a worker (as /train does in Discord), or `run` one here."""


@train.command("run")
@click.option("--dataset", "datasets", multiple=True, required=True, help="Dataset to train on (repeatable).")
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default=DEFAULT_MODEL,
    show_default=True,
    help="Detector architecture.",
)
@click.option(
    "--steps", type=click.IntRange(1, 200_000), default=1000, show_default=True, help="Training steps."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 512),
    default=32,
    show_default=True,
    help="Images per step (halved until no larger than the training images).",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(0.1, 24 * 60),
    default=None,
    help="Stop after this much training time, keeping the last checkpoint.",
)
@click.option(
    "--weights",
    default="imagenet",
    show_default=True,
    help="Backbone start: 'imagenet' (download), 'none' (random), or a Keras weights file.",
)
@click.option("--learning-rate", type=click.FloatRange(1e-6, 1.0), default=None, help="Peak learning rate.")
@click.option(
    "--input-size",
    type=click.IntRange(96, 640),
    default=320,
    show_default=True,
    help="Square model input in pixels.",
)
@click.option(
    "--alpha",
    type=click.Choice(["0.35", "0.5", "0.75", "1.0"]),
    default="1.0",
    show_default=True,
    help="MobileNetV2 width multiplier.",
)
@click.option("--val-dataset", default=None, help="Validate on this dataset instead of the split.")
@click.option("--no-validation", is_flag=True, help="Train on the training split without validating.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the model files (default: $FIELDLENS_HOME/models/local-<time>).",
)
@team_option
@json_option
@click.pass_obj
def run(
    state: State,
    datasets: tuple[str, ...],
    model: str,
    steps: int,
    batch_size: int,
    max_minutes: float | None,
    weights: str,
    learning_rate: float | None,
    input_size: int,
    alpha: str,
    val_dataset: str | None,
    no_validation: bool,
    out: Path | None,
    team: str,
    as_json: bool,
) -> None:
    """Train in the foreground, export float and int8 .tflite, verify both in LiteRT."""
    state.quiet("train-run")  # before TensorFlow loads: it reads its log level once
    from trainer.config import TrainConfig
    from trainer.pipeline import load_data, train_and_deliver

    services = state.services
    for name in dict.fromkeys(datasets):  # the advice first: it may change what to train on
        for line in services.datasets.get(team, name).lint:
            click.echo(f"  advice ({name}): {line}", err=True)
    out = out or state.settings.home / "models" / f"{team}-{time.strftime('%Y%m%d-%H%M%S')}"
    label_map, data = load_data(
        services, team, list(datasets), state.settings.home / "cache", val_dataset, not no_validation
    )
    config = TrainConfig(
        model=model,
        labels=label_map.labels,
        steps=steps,
        batch_size=batch_size,
        input_size=input_size,
        alpha=float(alpha),
        weights=weights,
        max_seconds=max_minutes * 60 if max_minutes else None,
    )
    if learning_rate:
        config = config.with_(learning_rate=learning_rate)
    speed = services.jobs.planner.images_per_second(model)
    p = make_plan(
        steps, batch_size, len(data.train), len(data.val), speed, max_minutes, config.checkpoint_every
    )
    config = config.with_(batch_size=p.batch_size)
    click.echo(
        f"Training {model} on {p.train_images} images ({p.val_images} validation): batch {p.batch_size}, "
        f"{p.steps_per_epoch:.1f} steps per epoch, {p.steps} steps = {p.epochs:.1f} epochs.",
        err=True,
    )
    click.echo(f"  {EPOCH_SENTENCE}", err=True)
    for w in p.warnings:
        click.echo(f"  note: {w}", err=True)
    try:
        with StepBar(enabled=sys.stderr.isatty() or not as_json) as bar:
            result, manifest = train_and_deliver(config, data, out / "training", out, TrainingBar(bar))
    except ValueError as e:
        raise UserError(str(e)) from e
    registered = services.models.register(team, out, name=f"{model} {'+'.join(datasets)}")
    m = manifest.metrics
    files = {k: str(out / v.path) for k, v in manifest.files.items()} | {
        "manifest": str(ModelFolder(out).manifest_path)
    }
    data_out = {
        "steps_completed": result.steps_completed,
        "reason": result.reason,
        "training_seconds": result.seconds,
        "images_per_second": result.images_per_second,
        **m.headline(),
        "int8_ok": manifest.int8_ok,
        "verdict": manifest.verdict,
        "model_id": registered.id,
        "files": files,
    }
    text = (
        f"Trained {result.steps_completed} steps in {result.seconds:.0f} s ({result.reason}).\n"
        f"{manifest.verdict}\n"
        f"mAP@0.5:0.95 int8 {m.map50_95_int8:.3f}, float {m.map50_95_float:.3f}\n"
        f"Model files in {out}"
    )
    emit(data_out, text)


@click.group()
def model() -> None:
    """Inspect delivered models."""


@model.command("list")
@team_option
@json_option
@click.pass_obj
def list_(state: State, team: str, as_json: bool) -> None:
    """List the team's delivered models, newest first."""
    models = state.services.models.list_team(team)[::-1]
    data = [
        {
            "id": m.id,
            "name": m.name,
            "labels": m.labels,
            "path": m.path,
            "metrics": m.metrics,
            "created_at": m.created_at.isoformat(),
            "promoted": m.promoted,
            "int8_ok": m.int8_ok,
        }
        for m in models
    ]
    text = (
        "\n".join(
            f"model {m.id:<4} {m.name:<40} mAP@0.5 int8 {m.metrics.get('map50_int8', 0):.3f}  {m.path}"
            + ("  PROMOTED: robots pull it" if m.promoted else "")
            + ("  FLAGGED: failed the int8 check" if m.flagged else "")
            for m in models
        )
        or "No models yet. Train one with `fieldlens train run`."
    )
    emit(data, text)


def _model_folder(state: State, team: str, model: str) -> Path:
    """MODEL is a model's number (`3` or `model 3`), part of its name, or a model folder."""
    if Path(model).is_dir():
        return Path(model)
    return Path(model_of(state, team, model).path)


@model.command("info")
@click.argument("model_ref", metavar="MODEL")
@team_option
@json_option
@click.pass_obj
def info(state: State, model_ref: str, team: str, as_json: bool) -> None:
    """Metrics and files of MODEL: its number, part of its name, or its folder."""
    folder = ModelFolder.given(_model_folder(state, team, model_ref))
    manifest = folder.manifest()
    m = manifest.metrics
    lines = [
        f"{manifest.model} {manifest.input_size}x{manifest.input_size}, labels: {', '.join(manifest.labels)}",
        manifest.verdict,
        f"mAP@0.5      float {m.map50_float:.3f}  int8 {m.map50_int8:.3f}",
        f"mAP@0.5:0.95 float {m.map50_95_float:.3f}  int8 {m.map50_95_int8:.3f}",
        "per-class AP@0.5 (int8): " + ", ".join(f"{k} {v:.3f}" for k, v in m.per_class_ap50.items()),
    ]
    if unmeasured := [label for label in manifest.labels if label not in m.per_class_ap50]:
        lines += [f"not measured (no validation image shows them): {', '.join(unmeasured)}"]
    if manifest.thresholds is not None:
        lines += [f"score thresholds, {manifest.thresholds.robot_sentence()}"]
        lines += [f"  {line}" for line in manifest.thresholds.label_lines()]
    if folder.quality.is_file():
        lines.append(f"precision-recall curves and confusion matrix: {folder.quality}")
    for key, f in manifest.files.items():
        lines.append(f"  {key:<6} {f.path:<20} {f.bytes:>10,} bytes  sha256 {f.sha256[:16]}...")
    emit(json.loads(manifest.to_json()), "\n".join(lines))


for _command in (promote, export, compare, token):  # fieldlens/cli/model_robot.py
    model.add_command(_command)
