"""How fast the demo's recipe learns its synthetic shapes: float mAP at every checkpoint, per seed.

    python -m bench.demo [--seeds 0 1 2] [--steps 300] [--minutes 3] [--set learning_rate=0.003 ...]

Trains `fieldlens demo`'s model (fieldlens/cli/demo.py: 160 px, width 0.35, from scratch, on the
same 300 synthetic images drawn with the same seed) for --steps or --minutes of training, whichever
ends first (the schedule anneals to it, as in the demo), with `--set` changes to its config,
one fresh child process per seed. It prints, per seed, the validation mAP@0.5 and mAP@0.5:0.95 of
the weight average at every checkpoint with the seconds since the process started (data, tracing
and evaluations included, as a team waits for them), then the mean at the last checkpoint.

The figures are the float model's, from the trainer's own evaluation; the demo itself delivers the
int8 model and prints its figures (the README has both). Run two recipes one after the other on the
same machine to compare them: these machines' speed varies from day to day.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.accuracy import config_changes


def _child(home: Path, steps: int, minutes: float, seed: int, changes: dict[str, Any]) -> None:
    from fieldlens.cli.demo import DEMO_BATCH_SIZE, DEMO_CONFIG
    from storage.services import open_services
    from storage.settings import Settings
    from storage.voc.synth import make_voc_zip
    from trainer.config import TrainConfig
    from trainer.events import Checkpoint
    from trainer.pipeline import load_data
    from trainer.train import Trainer

    started = time.perf_counter()
    services = open_services(Settings(home=home))
    # The demo's own sample: 300 images drawn with seed 7 (fieldlens/cli/demo.py).
    services.datasets.add("local", "demo", make_voc_zip(home / "demo.zip", images=300, seed=7))
    labels, data = load_data(services, "local", ["demo"], home / "cache")
    fields = {"batch_size": DEMO_BATCH_SIZE, **DEMO_CONFIG, **changes}
    limits = {"steps": steps, "max_seconds": minutes * 60 if minutes else None, "seed": seed}
    config = TrainConfig(**{**fields, "labels": labels.labels, **limits})

    def on_event(event: object) -> None:
        if isinstance(event, Checkpoint):
            m = event.metrics
            row = {"step": event.step, "s": time.perf_counter() - started}
            print(json.dumps({**row, "map50": m["map50"], "map50_95": m["map50_95"]}), flush=True)

    result = Trainer(config, data, home / "work", on_event=on_event).run()
    summary = {"images_per_s": result.images_per_second, "seconds": result.seconds}
    summary["steps"] = result.steps_completed
    print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--minutes", type=float, default=3.0, help="training time limit, as the demo's (0: steps only)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config change")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        home, steps, minutes, seed, changes = args.child
        _child(Path(home), int(steps), float(minutes), int(seed), json.loads(changes))
        return
    changes = config_changes(args.set)
    limit = f" or {args.minutes:g} min" if args.minutes else ""
    print(f"demo recipe{' with ' + json.dumps(changes) if changes else ''}, {args.steps} steps{limit}")
    last: list[dict[str, float]] = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as home:
            limits = [str(args.steps), str(args.minutes), str(seed)]
            command = [sys.executable, "-m", "bench.demo", "--child", home, *limits, json.dumps(changes)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        checkpoints, summary = rows[:-1], rows[-1]
        trail = ", ".join(
            f"{r['step']}: {r['map50']:.3f}/{r['map50_95']:.3f} ({r['s']:.0f} s)" for r in checkpoints
        )
        speed = f"{summary['steps']} steps, {summary['images_per_s']:.1f} img/s"
        print(f"seed {seed} ({speed}): {trail}", flush=True)
        last.append(checkpoints[-1])
    mean50 = sum(r["map50"] for r in last) / len(last)
    mean95 = sum(r["map50_95"] for r in last) / len(last)
    low = min(r["map50"] for r in last)
    print(
        f"last checkpoint, mean of {len(last)}: mAP@0.5 {mean50:.3f} (lowest {low:.3f}), "
        f"mAP@0.5:0.95 {mean95:.3f}"
    )


if __name__ == "__main__":
    main()
