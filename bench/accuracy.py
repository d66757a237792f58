"""Accuracy for a fixed wall-clock budget on a real dataset, from the pretrained backbone.

    python -m bench.accuracy [--zip ../shared/datasets/raccoon.zip] [--minutes 20]
                             [--weights ../shared/weights/mobilenet_v2_1.0_no_top.weights.h5]
                             [--model ssd_mobilenet_v2_320] [--batch-size 32]

Prints float and int8 mAP@0.5 and mAP@0.5:0.95 on the dataset's validation split (LiteRT), int8 and
float latency (median of 50 runs, 2 threads) and file sizes. The step count is chosen so that the
learning-rate schedule spans the budget at --rate images/s; the time budget also stops training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zip", type=Path, default=SHARED / "datasets" / "raccoon.zip")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v2_1.0_no_top.weights.h5"))
    parser.add_argument("--model", default="ssd_mobilenet_v2_320")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--rate", type=float, default=13.0, help="Expected training images/s (sets the steps)."
    )
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None, help="Keep the model folder here.")
    args = parser.parse_args()

    from storage.model_folder import ModelFolder
    from storage.plan import make_plan
    from storage.services import open_services
    from storage.settings import Settings
    from trainer.config import TrainConfig
    from trainer.pipeline import load_data, train_and_deliver

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
        )
        if args.learning_rate:
            config = config.with_(learning_rate=args.learning_rate)
        speed = services.jobs.planner.images_per_second(args.model)
        p = make_plan(steps, args.batch_size, len(data.train), len(data.val), speed, args.minutes)
        config = config.with_(batch_size=p.batch_size)
        out = args.out or home / "model"
        print(
            f"{args.zip.name}: {p.train_images} train / {p.val_images} val images, {args.model}, batch "
            f"{p.batch_size}, {steps} steps planned ({p.epochs:.1f} epochs), budget {args.minutes} min",
            flush=True,
        )
        result, manifest = train_and_deliver(config, data, home / "work", out)
        folder = ModelFolder(out)
        figures = {
            "dataset": args.zip.name,
            "model": args.model,
            "steps_completed": result.steps_completed,
            "training_minutes": result.seconds / 60,
            "train_images_per_s": result.images_per_second,
            **manifest.metrics.headline(),
            "latency_ms_int8": latency_ms(folder.int8_model),
            "latency_ms_float": latency_ms(folder.float_model),
            "size_mb_int8": folder.int8_model.stat().st_size / 1e6,
            "size_mb_float": folder.float_model.stat().st_size / 1e6,
        }
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
