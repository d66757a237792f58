"""Job bookkeeping under load: call latency while a worker trains, and training throughput it costs.

    python -m bench.jobs [--calls 300] [--steps 120]

1. Latency: a `fieldlens worker` process trains a job (160 px, width 0.35) while this process makes
   `--calls` rounds of the calls the bot and the CLI make: start (queue a job: checks, plan, budget
   reservation), status (the job and its last progress event) and stop (of that queued job, which
   cancels and refunds it). Prints median and p99 of each.
2. Throughput: the same small training run twice in this process, once with no-op callbacks and once
   with the job runner's real progress reporter and stop watcher writing to a job row, timing every
   callback. Prints the share of training time spent in bookkeeping, and images/s of both runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = {"input_size": 160, "alpha": 0.35, "weights": "none", "augment": False}


def _percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):6.2f} ms   p99 {p99:6.2f} ms   (n={len(ms)})"


def latency(home: Path, calls: int) -> None:
    from storage.domain import JobState
    from storage.services import open_services
    from storage.settings import Settings
    from storage.voc.synth import make_voc_zip

    s = open_services(Settings(home=home))
    s.datasets.add("local", "bench", make_voc_zip(images=200, seed=1))
    s.budget.grant("local", 100_000)
    busy = s.jobs.create("local", ["bench"], steps=100_000, batch_size=16, max_minutes=60, config=TINY)
    env = {**os.environ, "FIELDLENS_HOME": str(home), "FIELDLENS_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "fieldlens", "worker"], env=env)
    try:
        while s.jobs.get("local", busy.id).steps_completed < 20:  # past tracing, in steady training
            time.sleep(0.5)
        timings: dict[str, list[float]] = {"start": [], "status": [], "stop": []}
        for _ in range(calls):
            t0 = time.perf_counter()
            job = s.jobs.create("local", ["bench"], steps=500, batch_size=16, max_minutes=1, config=TINY)
            t1 = time.perf_counter()
            s.jobs.get("local", busy.id)
            s.jobs.last_progress(busy.id)
            t2 = time.perf_counter()
            assert s.jobs.request_stop("local", job.id).state == JobState.CANCELED
            t3 = time.perf_counter()
            timings["start"].append(t1 - t0)
            timings["status"].append(t2 - t1)
            timings["stop"].append(t3 - t2)
        steps = s.jobs.get("local", busy.id).steps_completed
        print(f"while a worker trains (it was at step {steps} after the calls):")
        for name, values in timings.items():
            print(f"  job {name:<6} {_percentiles(values)}")
        s.jobs.request_stop("local", busy.id)
        while not s.jobs.get("local", busy.id).state.is_final:
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(60)
        s.close()


class Timed:
    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args):
        t = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def overhead(home: Path, steps: int) -> None:
    from storage.services import open_services
    from storage.settings import Settings
    from storage.voc.synth import make_voc_zip
    from trainer.config import TrainConfig
    from trainer.job_runner import Reporter, StopWatcher
    from trainer.pipeline import load_data
    from trainer.train import Trainer

    s = open_services(Settings(home=home))
    s.datasets.add("local", "bench", make_voc_zip(images=200, seed=1))
    labels, data = load_data(s, "local", ["bench"], home / "cache", use_validation=False)
    config = TrainConfig(labels=labels.labels, steps=steps, batch_size=16, checkpoint_every=10_000, **TINY)
    Trainer(config.with_(steps=5), data, home / "warm").run()  # load and trace once, outside the timing

    plain = Trainer(config, data, home / "plain").run()
    job = s.jobs.create("local", ["bench"], steps=steps, batch_size=16, max_minutes=60, config=TINY)
    s.jobs.claim("bench")
    reporter = Timed(Reporter(s.jobs, job, 0.0))
    watcher = Timed(StopWatcher(s.jobs, job, os.getppid()))
    booked = Trainer(config, data, home / "booked", reporter, watcher).run()
    share = (reporter.seconds + watcher.seconds) / booked.seconds
    print(f"training {steps} steps (batch 16, 160 px, width 0.35):")
    print(f"  no bookkeeping:   {plain.images_per_second:6.1f} images/s")
    print(
        f"  with bookkeeping: {booked.images_per_second:6.1f} images/s; callbacks took "
        f"{reporter.seconds + watcher.seconds:.3f} s of {booked.seconds:.1f} s = {share:.2%} "
        f"({reporter.calls} progress calls, {watcher.calls} stop polls)"
    )
    s.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--steps", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        latency(Path(tmp) / "latency", args.calls)
        overhead(Path(tmp) / "overhead", args.steps)


if __name__ == "__main__":
    main()
