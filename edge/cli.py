"""`fieldlens-edge`: run a delivered model on images, video or a camera; benchmark it; pull updates."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from edge.errors import EdgeError
from edge.files import LABELS, MODEL

log = logging.getLogger("edge")


class EdgeGroup(click.Group):
    """Edge errors become one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(1)


@click.group(cls=EdgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """FieldLens edge runtime: object detection on a robot co-processor or Raspberry Pi."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _label_thresholds(values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for value in values:
        label, sep, number = value.rpartition("=")
        try:
            out[label] = float(number)
        except ValueError:
            label = ""
        if not sep or not label:
            raise click.BadParameter(
                f"expected LABEL=THRESHOLD, got {value!r}", param_hint="--label-threshold"
            )
    return out


@main.command()
@click.option("--model", required=True, type=click.Path(path_type=Path), help="The .tflite detection model.")
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    default=None,
    help=f"{LABELS} (default: packed in the model, or beside it).",
)
@click.option(
    "--source", required=True, help="Image, folder of images, video file, camera index, or 'picamera'."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per frame on stdout.")
@click.option(
    "--save", type=click.Path(file_okay=False, path_type=Path), help="Write annotated images/video here."
)
@click.option(
    "--serve",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve an MJPEG stream with boxes on this port (0: any free port).",
)
@click.option(
    "--nt",
    "nt_server",
    default=None,
    help="Publish to NetworkTables at this server (host, host:port, or FRC team number).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Minimum score for every label (default: the model's own thresholds, else 0.5).",
)
@click.option(
    "--label-threshold",
    multiple=True,
    help="Minimum score of one label, LABEL=T (repeatable; wins over both).",
)
@click.option("--only", multiple=True, help="Report only this label (repeatable).")
@click.option(
    "--threads", type=click.IntRange(1, 64), default=2, show_default=True, help="Interpreter threads."
)
@click.option("--letterbox", is_flag=True, help="Keep the frame's aspect ratio (pad) instead of stretching.")
@click.option("--loop", is_flag=True, help="Repeat an image, folder or video source forever.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Stop after this many frames.")
def run(
    model: Path,
    labels: Path | None,
    source: str,
    as_json: bool,
    save: Path | None,
    serve: int | None,
    nt_server: str | None,
    threshold: float | None,
    label_threshold: tuple[str, ...],
    only: tuple[str, ...],
    threads: int,
    letterbox: bool,
    loop: bool,
    max_frames: int | None,
) -> None:
    """Detect objects in frames from SOURCE and send them to the chosen outputs."""
    from edge.detector import TFLiteDetector
    from edge.outputs import JsonLines, NetworkTablesOutput, SaveAnnotated
    from edge.sources import open_source

    detector = TFLiteDetector(
        model, labels, threads, threshold, _label_thresholds(label_threshold), only or None, letterbox
    )
    click.echo(f"Score thresholds: {detector.thresholds.describe()}", err=True)
    frames = open_source(source, loop)
    outputs: list[Any] = []
    try:
        if as_json:
            outputs.append(JsonLines())
        if save is not None:
            outputs.append(SaveAnnotated(save))
        if serve is not None:
            from edge.stream import MJPEGServer

            server = MJPEGServer(port=serve, caption=f"score thresholds {detector.thresholds.describe()}")
            click.echo(f"Watch the stream at http://<this device>:{server.port}/", err=True)
            outputs.append(server)
        if nt_server is not None:
            outputs.append(NetworkTablesOutput(nt_server))
        for count, frame in enumerate(frames, start=1):
            latency = None
            detections = []
            if frame.image is not None:
                start = time.perf_counter()
                detections = detector.detect(frame.image)
                latency = (time.perf_counter() - start) * 1000
            for out in outputs:
                out.write(frame, detections, latency)
            if not as_json:
                found = ", ".join(f"{d.label} {d.score:.2f}" for d in detections) or "nothing"
                line = f"error: {frame.error}" if frame.error else f"{found} ({latency:.1f} ms)"
                click.echo(f"frame {frame.index} {frame.name}: {line}", err=True)
            if max_frames is not None and count >= max_frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        for out in outputs:
            out.close()


@main.command()
@click.option("--model", required=True, type=click.Path(path_type=Path), help="The .tflite detection model.")
@click.option(
    "--threads", type=click.IntRange(1, 64), default=2, show_default=True, help="Interpreter threads."
)
@click.option("--runs", type=click.IntRange(1, 100_000), default=100, show_default=True, help="Timed runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (median_ms, p95_ms, fps).")
def bench(model: Path, threads: int, runs: int, as_json: bool) -> None:
    """Measure latency (median, p95) and frames per second, with and without pre-processing."""
    from edge.bench import benchmark

    r = benchmark(model, threads, runs)
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    w = r["with_preprocessing"]
    assert isinstance(w, dict)
    click.echo(
        f"{model} ({r['input_dtype']} input {r['input']}), {threads} threads, {runs} runs:\n"
        f"  inference           median {r['median_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  "
        f"{r['fps']:.1f} fps\n"
        f"  with preprocessing  median {w['median_ms']:.2f} ms  p95 {w['p95_ms']:.2f} ms  {w['fps']:.1f} fps"
    )


@main.command()
@click.option("--server", required=True, help="The FieldLens server, e.g. https://fieldlens.example.org")
@click.option("--token", required=True, envvar="FIELDLENS_EDGE_TOKEN", help="The team's edge token.")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
    help="Folder for models; `current` points at the active one.",
)
def pull(server: str, token: str, dest: Path) -> None:
    """Download the team's model (the promoted one, else the newest that passed the int8 check), check
    its sha256, and swap it in atomically, keeping the one it replaces for `rollback`."""
    from edge.pull import describe
    from edge.pull import pull as do_pull

    version = do_pull(server, token, dest)
    click.echo(f"Current model: {describe(version)}")
    click.echo(f"  in {version} (run with --model {dest / 'current' / MODEL})")


@main.command()
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
    help="The folder `pull` uses.",
)
def rollback(dest: Path) -> None:
    """Go back to the model the last pull replaced (run it again to undo)."""
    from edge.pull import describe
    from edge.pull import rollback as do_rollback

    version = do_rollback(dest)
    click.echo(f"Current model: {describe(version)}")
    click.echo(f"  in {version} (run with --model {dest / 'current' / MODEL})")
