"""`fieldlens demo`: the main job on the embedded defaults, no Discord needed.

Makes a synthetic sample dataset, ingests it into the local team, queues a short training job and
runs it through a local worker (a child process trains, exports and verifies the int8 model), then
prints the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from fieldlens.cli.common import State, emit, json_option
from fieldlens.cli.dataset import format_report
from storage.domain import JobState
from storage.errors import NameTaken, UserError
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
        model, summary = _train(state, steps)
        result["model"] = model
        text += "\n\n" + summary
    emit(result, text)


DEMO_CONFIG = {
    "input_size": 160,
    "alpha": 0.35,
    "weights": "none",
    "learning_rate": 0.003,
    "warmup_steps": 30,
}


def _train(state: State, steps: int) -> tuple[dict[str, object], str]:
    """Queue a small job (160 px input, width 0.35, from scratch) and run it through a local worker."""
    import threading

    from fieldlens.cli.jobs import follow
    from trainer.worker import Worker

    services = state.services
    job = services.jobs.create(
        "local",
        [DEMO_DATASET],
        steps=steps,
        batch_size=16,
        max_minutes=30,
        description="fieldlens demo",
        config=DEMO_CONFIG,
    )
    if job.state != JobState.QUEUED:
        raise UserError(f"The demo job could not be queued ({job.state}); see `fieldlens job list`.")
    plan = job.config["plan"]
    click.echo(
        f"Queued job #{job.id}: {job.model} (160 px, width 0.35) for {steps} steps = "
        f"{plan['epochs']:.0f} epochs of {plan['train_images']} images. "  # type: ignore[index]
        "Starting a local worker...",
        err=True,
    )
    worker = Worker(state.settings, poll_seconds=0.5)
    thread = threading.Thread(target=worker.run, kwargs={"exit_when_idle": True}, daemon=True)
    thread.start()
    try:
        job = follow(services, "local", job.id, None, show=True)
    finally:
        worker.stop()
        thread.join()
    if job.state != JobState.SUCCEEDED or job.model_id is None:
        raise UserError(f"Demo job #{job.id} ended {job.state}: {job.error or 'see `fieldlens job status`'}")
    model = services.models.get("local", job.model_id)
    manifest = json.loads((Path(model.path) / "manifest.json").read_text())
    m = manifest["metrics"]
    result = {
        "job_id": job.id,
        "model_id": model.id,
        "path": model.path,
        "steps_completed": job.steps_completed,
        "training_seconds": job.training_seconds,
        "map50_float": m["map50_float"],
        "map50_int8": m["map50_int8"],
        "map50_95_int8": m["map50_95_int8"],
        "verdict": manifest["verdict"],
        "advice": manifest["advice"],
    }
    summary = "\n".join(
        [
            f"Demo job #{job.id}: {job.steps_completed} steps in {job.training_seconds:.0f} s of training; "
            f"model #{model.id}.",
            manifest["verdict"],
            f"mAP@0.5:0.95 int8 {m['map50_95_int8']:.3f}; files in {model.path} "
            "(model_int8.tflite, labels.txt, manifest.json).",
            *(f"  - {a}" for a in manifest["advice"]),
        ]
    )
    return result, summary
