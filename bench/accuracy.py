"""Accuracy for a fixed wall-clock budget on a real dataset, from the pretrained backbone.

    python -m bench.accuracy run [--zip ../shared/datasets/robosub_transdec.zip] [--minutes 20]
                                 [--name NAME] [--set KEY=VALUE ...] [--seed 0]
                                 [--results bench/results/accuracy.jsonl] [--out DIR]
    python -m bench.accuracy table [--results bench/results/accuracy.jsonl]

`run` trains one candidate (today's default, or the default with `--set` changes to TrainConfig,
e.g. `--set class_loss=quality --set iou_loss=ciou`) for --minutes of wall-clock time, delivers it
as FieldLens delivers every model (float and int8 .tflite through LiteRT, on the held-out split),
and appends one JSON line to the results file: mAP@0.5 and mAP@0.5:0.95 of both models, the int8
drop on both (and the int8 gate's mean and spread of it over imperceptibly perturbed copies of the
validation images, trainer/verify.py), AP@0.5 per label (int8), training images/s, int8 and float
latency (median of 50 runs, 2 threads) and sizes. Run another revision's tree with its own
interpreter to compare (`cd /tmp/base && python -m bench.accuracy run --results $PWD/...`): every
line says its revision.

`table` prints every line of the results file side by side, one column per run, grouped by
dataset, so candidates measured on the same machine read across.

The step count spans the budget at --rate images/s; the schedule follows time as well as steps, so
the run ends annealed at the time limit whichever comes first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

TREE = Path(__file__).resolve().parents[1]
SHARED = TREE.parent / "shared"
RESULTS = TREE / "bench" / "results" / "accuracy.jsonl"


def latency_ms(path: Path, runs: int = 50, threads: int = 2) -> float:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    image = np.random.default_rng(0).integers(0, 256, inp["shape"]).astype(inp["dtype"])
    times = []
    for _ in range(runs + 5):
        it.set_tensor(inp["index"], image)
        start = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[5:])


def config_changes(items: list[str]) -> dict[str, object]:
    """`--set KEY=VALUE` items as TrainConfig changes; a value is JSON when it parses as JSON."""

    def value(text: str) -> object:
        try:
            return json.loads(text)
        except ValueError:
            return text

    return {key: value(text) for key, text in (item.split("=", 1) for item in items)}


def _revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(TREE), "describe", "--always", "--dirty"], capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _boxes_per_label(samples, names) -> dict[str, int]:
    """How many boxes of each label the validation images hold (a label with none is not measured)."""
    counts = dict.fromkeys(names, 0)
    for s in samples:
        for c in s.classes.tolist():
            counts[names[c - 1]] += 1  # class 0 is the background
    return counts


def run(args: argparse.Namespace) -> dict:
    from storage.model_folder import ModelFolder
    from storage.plan import make_plan
    from storage.services import open_services
    from storage.settings import Settings
    from trainer.config import TrainConfig
    from trainer.deliver import INT8_DROP
    from trainer.pipeline import load_data, train_and_deliver

    changes = config_changes(args.set)
    revision = _revision()  # the code this run loaded, before anything is committed during it
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        services = open_services(Settings(home=home / "home"))
        services.datasets.add("local", "bench", args.zip)
        labels, data = load_data(services, "local", ["bench"], home / "cache")
        steps = max(100, int(args.minutes * 60 * args.rate / args.batch_size))
        config = TrainConfig(
            model=args.model,
            labels=labels.labels,
            steps=steps,
            batch_size=args.batch_size,
            weights=args.weights,
            max_seconds=args.minutes * 60,
            seed=args.seed,
        ).with_(**changes)
        speed = services.jobs.planner.images_per_second(config.model)
        p = make_plan(steps, config.batch_size, len(data.train), len(data.val), speed, args.minutes)
        config = config.with_(batch_size=p.batch_size)
        out = args.out or home / "model"
        print(
            f"{args.name}: {args.zip.name}: {p.train_images} train / {p.val_images} val / "
            f"{len(data.test)} test images, {config.model}, batch {p.batch_size}, {steps} steps "
            f"planned ({p.epochs:.1f} epochs), budget {args.minutes} min, changes {changes or 'none'}",
            flush=True,
        )
        result, manifest = train_and_deliver(config, data, home / "work", out)
        folder = ModelFolder(out)
        m = manifest.metrics
        figures = {
            "name": args.name,
            "revision": revision,
            "changes": changes,
            "seed": args.seed,
            "dataset": args.zip.name,
            "model": config.model,
            "minutes": args.minutes,
            "val_images": len(data.val),
            "val_boxes_per_label": _boxes_per_label(data.val, labels.labels),
            "steps_completed": result.steps_completed,
            "stopped_by": result.reason,
            "training_minutes": result.seconds / 60,
            "train_images_per_s": result.images_per_second,
            "time_split_s": result.time_split,  # waiting for data, train step, evaluation and checkpoints
            **m.headline(),
            "int8_drop_map50": m.map50_float - m.map50_int8,
            "int8_drop_map50_95": m.map50_95_float - m.map50_95_int8,
            # the gate's drop over imperceptibly changed copies of the images too: its mean and
            # spread say how much of one evaluation's drop is the evaluation's noise
            "int8_drop_perturbed": m.by_model.get(INT8_DROP),
            "per_label_ap50_int8": m.per_class_ap50,
            "latency_ms_int8": latency_ms(folder.int8_model),
            "latency_ms_float": latency_ms(folder.float_model),
            "size_mb_int8": folder.int8_model.stat().st_size / 1e6,
            "size_mb_float": folder.float_model.stat().st_size / 1e6,
        }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with open(args.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(figures) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


ROWS = (
    ("revision", "revision", "{}"),
    ("note", "note", "{}"),
    ("model", "model", "{}"),
    ("changes", "changes", "{}"),
    ("seed", "seed", "{}"),
    ("steps_completed", "steps", "{}"),
    ("train_images_per_s", "train img/s", "{:.1f}"),
    ("map50_int8", "int8 mAP@0.5", "{:.3f}"),
    ("map50_95_int8", "int8 mAP@0.5:0.95", "{:.3f}"),
    ("map50_float", "float mAP@0.5", "{:.3f}"),
    ("map50_95_float", "float mAP@0.5:0.95", "{:.3f}"),
    ("int8_drop_map50", "int8 drop mAP@0.5", "{:+.3f}"),
    ("int8_drop_map50_95", "int8 drop mAP@0.5:0.95", "{:+.3f}"),
    ("latency_ms_int8", "int8 ms/image", "{:.1f}"),
    ("latency_ms_float", "float ms/image", "{:.1f}"),
)


def _noise_cell(noise: dict | None) -> str:
    if not noise:
        return "-"
    (m50, m95), (s50, s95) = noise["mean"], noise["sd"]
    return f"{m50:+.3f} ({s50:.3f}) / {m95:+.3f} ({s95:.3f})"


def table(results: Path) -> str:
    """The results side by side in Markdown: one table per dataset, one column per run."""
    runs = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        group = [r for r in runs if r["dataset"] == dataset]
        out.append(f"### {dataset}, {group[0]['minutes']:g} min each\n")
        out.append("| | " + " | ".join(r["name"] for r in group) + " |")
        out.append("|---" * (len(group) + 1) + "|")
        for key, title, fmt in ROWS:
            cells = [fmt.format(r[key]) if r.get(key) not in (None, {}) else "-" for r in group]
            out.append(f"| {title} | " + " | ".join(cells) + " |")
        out.append(
            "| int8 drop, mean (sd) over perturbed copies, mAP@0.5 / @0.5:0.95 | "
            + " | ".join(_noise_cell(r.get("int8_drop_perturbed")) for r in group)
            + " |"
        )
        labels = dict.fromkeys(
            k for r in group for k in (*r.get("per_label_ap50_int8", {}), *r.get("val_boxes_per_label", {}))
        )
        for label in labels:
            # "-": not measured (no validation box of the label; runs recorded before 2026-11-23
            # wrote 0.00 for those, so read 0.00 beside a "-" as not measured too)
            ap = [r.get("per_label_ap50_int8", {}).get(label) for r in group]
            cells = ["-" if a is None else f"{a:.2f}" for a in ap]
            boxes = {r["val_boxes_per_label"].get(label) for r in group if r.get("val_boxes_per_label")}
            shown = f" ({boxes.pop()} val boxes)" if len(boxes) == 1 else ""
            out.append(f"| AP@0.5 {label}{shown} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and deliver one candidate; append its figures")
    r.add_argument("--zip", type=Path, default=SHARED / "datasets" / "robosub_transdec.zip")
    r.add_argument("--minutes", type=float, default=20.0)
    r.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v2_1.0_no_top.weights.h5"))
    r.add_argument("--model", default="ssd_mobilenet_v2_320")
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument(
        "--rate",
        type=float,
        default=20.0,
        help="expected training images/s (sets the steps; above what is reached, so time ends the run)",
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--name", default="default")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a TrainConfig change")
    r.add_argument("--results", type=Path, default=RESULTS)
    r.add_argument("--out", type=Path, default=None, help="keep the model folder here")
    t = sub.add_parser("table", help="print the results side by side")
    t.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        print(table(args.results))


if __name__ == "__main__":
    main()
