"""Slash-command latency of the real bot while a job trains.

    python -m bench.bot [--rounds 5] [--concurrent 50]

The bot (discord.py, real) talks to the fake Discord from the test suite on 127.0.0.1 (the only
Discord this machine can reach). A `fieldlens worker` process trains a job meanwhile. Each round
dispatches `--concurrent` slash commands at once (a mix of budget, dataset, train and model
commands; one warm-up round is not counted) and measures, per command, the time from the
INTERACTION_CREATE being sent on the gateway to the bot's first response reaching the REST
endpoint. Prints median and p99, idle and while training.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from tests.bot.conftest import World

COMMANDS = [
    ("budget show", {}),
    ("dataset list", {}),
    ("dataset info", {"name": (3, "bench")}),
    ("train list", {}),
    ("train status", {"job": (4, 1)}),
    ("model list", {}),
]
TINY = {"input_size": 160, "alpha": 0.35, "weights": "none", "augment": False}


async def burst(world: World, n: int) -> list[float]:
    fake = world.fake
    sent = await asyncio.gather(
        *[
            fake.slash(COMMANDS[i % len(COMMANDS)][0], COMMANDS[i % len(COMMANDS)][1], guild=world.team_a)
            for i in range(n)
        ]
    )
    await fake.wait_for(lambda: all(i.callbacks for i in sent), 60, "every command to be answered")
    return [i.first_response_at - i.dispatched_at for i in sent]


def report(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"{label:<28} median {statistics.median(ms):7.1f} ms   p99 {p99:7.1f} ms   "
        f"max {ms[-1]:7.1f} ms   (n={len(ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        world = World(Settings(home=home, web_port=0, notify_seconds=3.0, log_level="WARNING"))
        world.start()
        team = world.team_a.id
        world.call(lambda: world.bot.services.datasets.add(team, "bench", make_voc_zip(images=200, seed=1)))
        world.run(burst(world, args.concurrent))  # warm-up (first use of each command), not counted
        idle = [s for _ in range(args.rounds) for s in world.run(burst(world, args.concurrent))]
        job = world.call(
            lambda: world.bot.services.jobs.create(
                team, ["bench"], steps=100_000, batch_size=16, max_minutes=60, config=TINY
            )
        )
        env = {**os.environ, "FIELDLENS_HOME": str(home), "FIELDLENS_LOG_LEVEL": "WARNING"}
        worker = subprocess.Popen([sys.executable, "-m", "fieldlens", "worker"], env=env)
        try:
            while world.call(lambda: world.bot.services.jobs.get(team, job.id).steps_completed) < 20:
                time.sleep(0.5)
            busy = [s for _ in range(args.rounds) for s in world.run(burst(world, args.concurrent))]
            steps = world.call(lambda: world.bot.services.jobs.get(team, job.id).steps_completed)
        finally:
            world.call(lambda: world.bot.services.jobs.request_stop(team, job.id))
            worker.terminate()
            worker.wait(120)
            world.close()
    print(f"{args.rounds} rounds of {args.concurrent} concurrent slash commands, dispatch -> first response:")
    report("idle", idle)
    report(f"while training (step {steps})", busy)


if __name__ == "__main__":
    main()
