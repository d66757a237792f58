"""Slash-command latency of the real bot while a job trains.

    python -m bench.bot [--rounds 5] [--concurrent 50]

The bot (discord.py, real) talks to the fake Discord from the test suite on 127.0.0.1 (the only
Discord this machine can reach). A `fieldlens worker` process trains a job meanwhile. Each round
dispatches `--concurrent` slash commands at once (a mix of budget, dataset, train and model
commands; one warm-up round is not counted) and measures, per command, the time from the
INTERACTION_CREATE being sent on the gateway to the bot's first response reaching the REST
endpoint. Prints median and p99, idle and while training.

With `--pages N`, the rounds while training run again with N job pages open in another process
(each holds the page's live event stream and reloads the page every 2 s, as a team watching a run
would), then once more after they closed; these two phases space their rounds a second apart so
that pages load during them, and come from the same minutes of the same job.

The bot runs in its own process, as in production (Discord's side costs it nothing there); with
`--same-process` it shares the fake Discord's event loop as in the tests, so every command waits for
the fake's work on the other 49 as well.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from storage.services import open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from tests.bot.world import World

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


def _serve_bot(settings: Settings, base: str, gateway: str) -> None:
    """The bot in a process of its own, as in production, logged in to the fake Discord."""
    import discord
    import yarl

    from bot.client import FieldLensBot

    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    asyncio.run(FieldLensBot(settings, sync=True, guild_ready_timeout=0.1).start("fake-token"))


def start_separate(world: World) -> multiprocessing.process.BaseProcess:
    """The fake Discord on this process's loop, the bot in a child process: the fake's work (Discord's,
    in production) is not on the bot's CPU, and the bot's loop serves only the bot."""

    async def fake() -> None:
        await world.fake.start()
        world.team_a = world.fake.add_guild("Team A", roles=["builders"])
        world.team_b = world.fake.add_guild("Team B")

    world.run(fake())
    base = world.fake.base
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_bot,
        args=(world.settings, f"{base}/api/v10", f"ws://127.0.0.1:{world.fake.port}/"),
        name="fieldlens-bot",
    )
    process.start()
    world.wait(lambda: world.fake.identifies and world.fake.sockets, 120, "the bot to log in")
    time.sleep(1.0)  # its guild cache fills from GUILD_CREATE
    return process


def _watch_pages(url: str, stream: str, n: int, stop: object, counts: object) -> None:
    """In a child process: `n` viewers of a job page, each holding its event stream and reloading the
    page every 2 s, until `stop` is set; counts: events received, pages loaded, seconds loading them."""

    def listen() -> None:
        with urllib.request.urlopen(stream, timeout=60) as events:
            for line in events:
                if line.startswith(b"data: "):
                    with counts.get_lock():  # type: ignore[attr-defined]
                        counts[0] += 1  # type: ignore[index]
                if stop.is_set():  # type: ignore[attr-defined]
                    return

    def reload() -> None:
        while not stop.is_set():  # type: ignore[attr-defined]
            started = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as page:
                page.read()
            with counts.get_lock():  # type: ignore[attr-defined]
                counts[1] += 1  # type: ignore[index]
                counts[2] += time.perf_counter() - started  # type: ignore[index]
            stop.wait(2.0)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=f, daemon=True) for _ in range(n) for f in (listen, reload)]
    for t in threads:
        t.start()
    stop.wait()  # type: ignore[attr-defined]


def spaced(world: World, rounds: int, n: int) -> list[float]:
    """Rounds a second apart, so that pages reload (every 2 s) while they run."""
    out: list[float] = []
    for _ in range(rounds):
        out += world.run(burst(world, n))
        time.sleep(1.0)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="Run the bot on the fake Discord's event loop (the test suite's set-up; its figures include "
        "the fake's work).",
    )
    parser.add_argument("--pages", type=int, default=0, help="Job pages open during a second busy phase.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        port = _free_port()
        settings = Settings(
            home=home,
            web_port=port,
            web_secret="bench-secret",  # type: ignore[arg-type]
            public_url=f"http://127.0.0.1:{port}",
            notify_seconds=3.0,
            log_level="WARNING",
        )
        world = World(settings)
        bot_process = None
        if args.same_process:
            world.start()
        else:
            bot_process = start_separate(world)
        services = open_services(settings)  # this thread's own connection to the bot's database
        team = world.team_a.id
        services.datasets.add(team, "bench", make_voc_zip(images=200, seed=1))
        world.run(burst(world, args.concurrent), 120)  # warm-up (first use of each command), not counted
        idle = [s for _ in range(args.rounds) for s in world.run(burst(world, args.concurrent))]
        job = services.jobs.create(team, ["bench"], steps=100_000, batch_size=16, max_minutes=60, config=TINY)
        env = {**os.environ, "FIELDLENS_HOME": str(home), "FIELDLENS_LOG_LEVEL": "WARNING"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "fieldlens", "worker"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            while services.jobs.get(team, job.id).steps_completed < 20:
                time.sleep(0.5)
            busy = [s for _ in range(args.rounds) for s in world.run(burst(world, args.concurrent))]
            steps = services.jobs.get(team, job.id).steps_completed
            with_pages: list[float] = []
            if args.pages:
                from bot.links import LinkSigner

                signer = LinkSigner.from_settings(settings)
                context = multiprocessing.get_context("spawn")
                stop, counts = context.Event(), context.Array("d", 3)
                viewers = context.Process(
                    target=_watch_pages,
                    args=(
                        signer.page_url(team, f"/jobs/{job.id}"),
                        signer.page_url(team, f"/jobs/{job.id}/events"),
                        args.pages,
                        stop,
                        counts,
                    ),
                )
                viewers.start()
                while counts[1] < args.pages:  # every viewer has its page open (the process takes a while)
                    time.sleep(0.2)
                loads_before, started = counts[1], time.monotonic()
                with_pages = spaced(world, args.rounds, args.concurrent)
                loads, window = counts[1] - loads_before, time.monotonic() - started
                stop.set()
                viewers.join(30)
                page_steps = services.jobs.get(team, job.id).steps_completed
                # The same again with the pages closed: drift over the job (checkpoints) shows here.
                after = spaced(world, args.rounds, args.concurrent)
                after_steps = services.jobs.get(team, job.id).steps_completed
        finally:
            services.jobs.request_stop(team, job.id)
            worker.terminate()
            worker.wait(120)
            services.close()
            if bot_process is not None:
                bot_process.terminate()
                bot_process.join(30)
                world.run(world.fake.stop())
            else:
                world.close()
    where = "on the fake Discord's loop" if args.same_process else "in its own process"
    print(
        f"{args.rounds} rounds of {args.concurrent} concurrent slash commands to the bot {where}, "
        "dispatch -> first response:"
    )
    report("idle", idle)
    report(f"while training (step {steps})", busy)
    if with_pages:
        report(f"+ {args.pages} job pages (step {page_steps})", with_pages)
        report(f"pages closed again (step {after_steps})", after)
        print(
            f"  the pages received {counts[0]:.0f} streamed events and loaded {counts[1]:.0f} times "
            f"({counts[2] / max(counts[1], 1) * 1000:.0f} ms a load), {loads:.0f} of them in the "
            f"{window:.1f} s of those rounds"
        )


if __name__ == "__main__":
    main()
