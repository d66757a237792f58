"""`fieldlens train run` and `fieldlens model show`: train in the foreground, then export and verify."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from fieldlens.cli.common import State, emit, json_option, team_option
from storage.errors import UserError

MODEL_CHOICES = ("ssd_mobilenet_v2_320", "ssd_mobilenet_v2_fpnlite_320")


class Progress:
    """One status line on stderr: steps, images/s, loss, ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        if event["kind"] == "step" and (
            time.monotonic() - self.last > 0.5 or event["step"] == event["steps"]
        ):
            self.last = time.monotonic()
            done, total = event["step"], event["steps"]
            bar = "#" * int(30 * done / total)
            eta = event["eta_seconds"]
            eta_text = f"{int(eta) // 60}:{int(eta) % 60:02d}" if eta is not None else "--:--"
            click.echo(
                f"\r[{bar:<30}] {done}/{total} steps | {event['images_per_second']:.1f} img/s | "
                f"loss {event['loss']['total']:.3f} | ETA {eta_text}  ",
                err=True,
                nl=False,
            )
        elif event["kind"] == "checkpoint":
            m = event["metrics"]
            if "map50" in m:
                click.echo(
                    f"\n  checkpoint at step {event['step']}: val mAP@0.5 {m['map50']:.3f}, "
                    f"mAP@0.5:0.95 {m['map50_95']:.3f}",
                    err=True,
                )


@click.group()
def train() -> None:
    """Train a detector on the team's datasets."""


@train.command("run")
@click.option("--dataset", "datasets", multiple=True, required=True, help="Dataset to train on (repeatable).")
@click.option(
    "--model",
    type=click.Choice(MODEL_CHOICES),
    default=MODEL_CHOICES[0],
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
    from trainer.config import TrainConfig
    from trainer.pipeline import load_data, plan, train_and_deliver

    services = state.services
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
    p = plan(config, len(data.train), len(data.val))
    config = config.with_(batch_size=p.batch_size)
    click.echo(
        f"Training {model} on {p.train_images} images ({p.val_images} validation): batch {p.batch_size}, "
        f"{p.steps_per_epoch:.1f} steps per epoch, {p.steps} steps = {p.epochs:.1f} epochs.",
        err=True,
    )
    for w in p.warnings:
        click.echo(f"  note: {w}", err=True)
    try:
        result, manifest = train_and_deliver(
            config, data, out / "training", out, Progress(sys.stderr.isatty() or not as_json)
        )
    except ValueError as e:
        raise UserError(str(e)) from e
    click.echo("", err=True)
    registered = services.models.register(team, out, name=f"{model} {'+'.join(datasets)}")
    m = manifest["metrics"]
    files = {k: str(out / v["path"]) for k, v in manifest["files"].items()} | {
        "manifest": str(out / "manifest.json")
    }
    data_out = {
        "steps_completed": result.steps_completed,
        "reason": result.reason,
        "training_seconds": result.seconds,
        "images_per_second": result.images_per_second,
        "map50_float": m["map50_float"],
        "map50_int8": m["map50_int8"],
        "map50_95_float": m["map50_95_float"],
        "map50_95_int8": m["map50_95_int8"],
        "int8_ok": manifest["int8_ok"],
        "verdict": manifest["verdict"],
        "model_id": registered.id,
        "files": files,
    }
    text = (
        f"Trained {result.steps_completed} steps in {result.seconds:.0f} s ({result.reason}).\n"
        f"{manifest['verdict']}\n"
        f"mAP@0.5:0.95 int8 {m['map50_95_int8']:.3f}, float {m['map50_95_float']:.3f}\n"
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
    """List the team's delivered models, newest last."""
    models = state.services.models.list_team(team)
    data = [
        {
            "id": m.id,
            "name": m.name,
            "labels": m.labels,
            "path": m.path,
            "metrics": m.metrics,
            "created_at": m.created_at.isoformat(),
        }
        for m in models
    ]
    text = (
        "\n".join(
            f"#{m.id:<4} {m.name:<40} mAP@0.5 int8 {m.metrics.get('map50_int8', 0):.3f}  {m.path}"
            for m in models
        )
        or "No models yet. Train one with `fieldlens train run`."
    )
    emit(data, text)


@model.command("token")
@team_option
@json_option
@click.pass_obj
def token(state: State, team: str, as_json: bool) -> None:
    """Create a token for the team's robots (`fieldlens-edge pull --token ...`); shown once."""
    value = state.services.models.create_edge_token(team)
    emit(
        {"team": team, "token": value},
        f"Edge token for team {team} (store it now; it is not shown again):\n{value}",
    )


@model.command("show")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
def show(path: Path, as_json: bool) -> None:
    """Print the manifest and metrics of the model folder PATH."""
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        raise UserError(f"{path} has no manifest.json; give the folder that `fieldlens train run` wrote.")
    manifest = json.loads(manifest_path.read_text())
    m = manifest["metrics"]
    lines = [
        f"{manifest['model']} {manifest['input_size']}x{manifest['input_size']}, labels: "
        f"{', '.join(manifest['labels'])}",
        manifest["verdict"],
        f"mAP@0.5      float {m['map50_float']:.3f}  int8 {m['map50_int8']:.3f}",
        f"mAP@0.5:0.95 float {m['map50_95_float']:.3f}  int8 {m['map50_95_int8']:.3f}",
        "per-class AP@0.5 (int8): "
        + ", ".join(f"{k} {v:.3f}" for k, v in m["int8"]["per_class_ap50"].items()),
    ]
    for key, f in manifest["files"].items():
        lines.append(f"  {key:<6} {f['path']:<20} {f['bytes']:>10,} bytes  sha256 {f['sha256'][:16]}...")
    emit(manifest, "\n".join(lines))
