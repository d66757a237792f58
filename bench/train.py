"""Training throughput and peak memory per model and batch size on this machine.

    python -m bench.train [--models ssd_mobilenet_v2_320 ...] [--batch-sizes 8 32] [--steps 40]
                          [--zip ../shared/datasets/raccoon.zip]

Each configuration trains in a fresh child process (so peak RSS is its own) with the real input
pipeline (cache, augmentation, matching, prefetch); images/s is measured after the first 5 steps
(tracing) and includes everything a step waits for.

Where the time goes, per run: the wall-clock seconds the training loop spent waiting for the next
batch, in the train step, and evaluating; and the child's CPU as user and system seconds and as
cores busy (CPU seconds / wall seconds, of the whole child: start-up, caching and tracing included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "mobilenet_v2_1.0_no_top.weights.h5"
)


def _child(model: str, batch: int, steps: int, zip_path: str, home: str, weights: str) -> None:
    from storage.services import open_services
    from storage.settings import Settings
    from storage.voc.synth import make_voc_zip
    from trainer.config import TrainConfig
    from trainer.events import Step
    from trainer.pipeline import load_data
    from trainer.train import Trainer

    services = open_services(Settings(home=Path(home)))
    source = Path(zip_path) if zip_path != "synthetic" else make_voc_zip(images=200, seed=1)
    services.datasets.add("local", "bench", source)
    labels, data = load_data(services, "local", ["bench"], Path(home) / "cache", use_validation=False)
    config = TrainConfig(
        model=model,
        labels=labels.labels,
        steps=steps,
        batch_size=batch,
        weights=weights,
        checkpoint_every=10**6,
        quant_aware_from=1.0,  # the plain step's rate (the int8-rounding one from 80% costs ~1.2x)
    )
    times: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, Step):
            times.append(time.perf_counter())

    started = time.perf_counter()
    result = Trainer(config, data, Path(home) / "work", on_event=on_event).run()
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    measured = times[5:]
    rate = (len(measured) - 1) * batch / (measured[-1] - measured[0])
    print(
        json.dumps(
            {
                "model": model,
                "batch": batch,
                "images_per_s": rate,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "split_s": result.time_split,
                "user_s": usage.ru_utime,
                "sys_s": usage.ru_stime,
                "train_wall_s": wall,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", nargs="*", default=["ssd_mobilenet_v2_320", "ssd_mobilenet_v2_fpnlite_320"]
    )
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[8, 32])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--zip", default="synthetic", help="Dataset zip to train on (default: 200 synthetic images)."
    )
    parser.add_argument(
        "--weights",
        default=str(SHARED_WEIGHTS) if SHARED_WEIGHTS.exists() else "none",
        help="Backbone start; pretrained weights freeze the stem (default: the shared file).",
    )
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, batch, steps, zip_path, home, weights = args.child
        _child(model, int(batch), int(steps), zip_path, home, weights)
        return
    print(f"weights: {args.weights}")
    print(f"{'model':<30} {'batch':>5} {'images/s':>9} {'peak RSS MB':>12}")
    for model in args.models:
        for batch in args.batch_sizes:
            with tempfile.TemporaryDirectory() as home:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.train",
                        "--child",
                        model,
                        str(batch),
                        str(args.steps),
                        args.zip,
                        home,
                        args.weights,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{model:<30} {batch:>5} {r['images_per_s']:>9.1f} {r['peak_rss_mb']:>12.0f}", flush=True)
            split = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in r["split_s"].items())
            cpu = r["user_s"] + r["sys_s"]
            print(
                f"    training {r['train_wall_s']:.1f} s: {split}; process CPU user {r['user_s']:.1f} s, "
                f"system {r['sys_s']:.1f} s ({r['sys_s'] / max(cpu, 1e-9):.0%}), "
                f"{cpu / max(r['train_wall_s'], 1e-9):.2f} cores over the training",
                flush=True,
            )


if __name__ == "__main__":
    main()
