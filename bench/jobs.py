"""Job bookkeeping under load: call latency while a worker trains, and training throughput it costs.

    python -m bench.jobs [--calls 300] [--steps 120]
    python -m bench.jobs --broker [--calls 300] [--samples 10]

1. Latency: a `fieldlens worker` process trains a job (160 px, width 0.35) while this process makes
   `--calls` rounds of the calls the bot and the CLI make: start (queue a job: checks, plan, budget
   reservation), status (the job and its last progress event) and stop (of that queued job, which
   cancels and refunds it). Prints median and p99 of each.
2. Throughput: the same small training run twice in this process, once with no-op callbacks and once
   with the job runner's real progress reporter and stop watcher writing to a job row, timing every
   callback. Prints the share of training time spent in bookkeeping, and images/s of both runs.
3. With --broker (needs redis-server): a redis-server on loopback, `fieldlens control` and two
   `fieldlens worker --broker` processes with their own data folders and a file:// store. Dispatch
   latency: a job queued while both workers are idle, timed from its QUEUED row to PREPARING (a
   worker claimed it) and to its end (it is stopped at once, so it ends CANCELED before training),
   `--samples` times. Then the calls of 1. while the two remote workers train and report progress,
   beside the same calls while the embedded worker trains two jobs (`--slots 2`), in one run.
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


def latency(
    home: Path, calls: int, broker: str | None = None, store: str | None = None, samples: int = 10
) -> None:
    from storage.domain import JobState
    from storage.services import open_services
    from storage.settings import Settings
    from storage.voc.synth import make_voc_zip

    s = open_services(Settings(home=home))
    s.datasets.add("local", "bench", make_voc_zip(images=200, seed=1))
    s.budget.grant("local", 100_000)
    env = {**os.environ, "FIELDLENS_HOME": str(home), "FIELDLENS_LOG_LEVEL": "WARNING"}
    if broker is None:
        procs = [subprocess.Popen([sys.executable, "-m", "fieldlens", "worker", "--slots", "2"], env=env)]
    else:
        procs = _remote_fleet(home, env, broker, store or "")
    try:
        if broker is not None:
            dispatch_latency(s, samples)
        busy = [
            s.jobs.create("local", ["bench"], steps=100_000, batch_size=16, max_minutes=60, config=TINY)
            for _ in range(2)
        ]
        while min(s.jobs.get("local", b.id).steps_completed for b in busy) < 20:  # both in steady training
            time.sleep(0.5)
        timings: dict[str, list[float]] = {"start": [], "status": [], "stop": []}
        for _ in range(calls):
            t0 = time.perf_counter()
            job = s.jobs.create("local", ["bench"], steps=500, batch_size=16, max_minutes=1, config=TINY)
            t1 = time.perf_counter()
            s.jobs.get("local", busy[0].id)
            s.jobs.last_progress(busy[0].id)
            t2 = time.perf_counter()
            assert s.jobs.request_stop("local", job.id).state == JobState.CANCELED
            t3 = time.perf_counter()
            timings["start"].append(t1 - t0)
            timings["status"].append(t2 - t1)
            timings["stop"].append(t3 - t2)
        steps = [s.jobs.get("local", b.id).steps_completed for b in busy]
        where = "two remote workers train" if broker else "the embedded worker trains two jobs"
        print(f"while {where} (at steps {steps} after the calls):")
        for name, values in timings.items():
            print(f"  job {name:<6} {_percentiles(values)}")
        for b in busy:
            s.jobs.request_stop("local", b.id)
        while not all(s.jobs.get("local", b.id).state.is_final for b in busy):
            time.sleep(0.5)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:  # a Celery worker waits for its task on SIGTERM
                proc.kill()
                proc.wait(10)
        s.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _remote_fleet(home: Path, env: dict[str, str], broker: str, store: str) -> list[subprocess.Popen]:
    """`fieldlens control` on `home` and two remote workers with data folders of their own."""
    env = {**env, "FIELDLENS_BROKER_URL": broker, "FIELDLENS_STORE": store}
    procs = [subprocess.Popen([sys.executable, "-m", "fieldlens", "control"], env=env)]
    for n in range(2):
        worker_env = {**env, "FIELDLENS_HOME": str(home.parent / f"remote-worker-{n}")}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "fieldlens", "worker", "--broker", broker], env=worker_env
            )
        )
    return procs


def dispatch_latency(s, samples: int) -> None:
    """Queue a job with both workers idle; QUEUED -> PREPARING, and -> its end when stopped at once."""
    from storage.domain import JobState

    claimed, ended = [], []
    for _ in range(samples):
        job = s.jobs.create("local", ["bench"], steps=500, batch_size=16, max_minutes=1, config=TINY)
        while s.jobs.get("local", job.id).state == JobState.QUEUED:
            time.sleep(0.01)
        s.jobs.request_stop("local", job.id)
        while not s.jobs.get("local", job.id).state.is_final:
            time.sleep(0.05)
        events = s.jobs.events(job.id, kinds=("state",))
        at = {e.state: e.at for e in events}
        claimed.append((at[JobState.PREPARING] - at[JobState.QUEUED]).total_seconds())
        ended.append((events[-1].at - at[JobState.QUEUED]).total_seconds())
    print(f"dispatch through the broker ({samples} jobs, a worker idle each time):")
    print(f"  queued -> claimed by a worker   {_percentiles(claimed)}")
    print(f"  queued -> stopped and ended     {_percentiles(ended)}  (the worker process loads TensorFlow)")


def _redis(folder: Path) -> tuple[subprocess.Popen, str]:
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("--broker needs redis-server (Debian: apt install redis-server)")
    port = _free_port()
    folder.mkdir(parents=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


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
    from trainer.job_link import LocalLink
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
    link = LocalLink(s, job.id)
    reporter = Timed(Reporter(link, 0.0))
    watcher = Timed(StopWatcher(link, os.getppid()))
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
    parser.add_argument("--broker", action="store_true", help="Remote workers through Celery and Redis.")
    parser.add_argument("--samples", type=int, default=10, help="Dispatch latency samples (--broker).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.broker:
            redis, url = _redis(Path(tmp) / "redis")
            try:
                latency(
                    Path(tmp) / "remote" / "bot",
                    args.calls,
                    url,
                    (Path(tmp) / "store").as_uri(),
                    args.samples,
                )
                latency(Path(tmp) / "embedded", args.calls)
            finally:
                redis.terminate()
            return
        latency(Path(tmp) / "latency", args.calls)
        overhead(Path(tmp) / "overhead", args.steps)


if __name__ == "__main__":
    main()
