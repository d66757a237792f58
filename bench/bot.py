"""Slash-command latency of the real bot while a job trains, and where the time goes.

    python -m bench.bot [--rounds 5] [--concurrent 50] [--pages N] [--compare DIR] [--same-process]

The bot (discord.py, real) talks to the tests' fake Discord (testkit/) on 127.0.0.1 (the only
Discord this machine can reach). A `fieldlens worker` process trains a job meanwhile. Each round
dispatches `--concurrent` slash commands at once (a mix of budget, dataset, train and model
commands; one warm-up round is not counted) and measures, per command, the time from the
INTERACTION_CREATE being sent on the gateway to the bot's first response reaching the REST
endpoint. Prints median and p99, idle and while training (the p99 is about the slowest burst's slowest
command; "typical burst", the median over the bursts of each one's slowest response, is what one
burst disturbed by another process does not move), and where the time went:

- per command, six stages (STAGES in bench/bot_report.py), timed by the fake and by a probe in the
  bot's process (`time.perf_counter` is CLOCK_MONOTONIC, one clock for every process);
- per burst, what the two cores did: CPU time of the bot, of the fake Discord (this process), of the
  training processes, of the page viewers and of everything else on the machine (the last three
  from /proc, in 10 ms ticks, so approximate), and the bot's garbage-collector pauses.

With `--pages N`, the rounds while training alternate between N job pages open in another process
(each holds the event stream the page's script opens and reloads the page every 2 s, as a team
watching a run would) and none, so both columns come from the same minutes of the same job.

With `--compare DIR`, a second bot runs from another checkout of FieldLens (an earlier commit,
unpacked with `git archive`), logged in to a fake Discord of its own with the same two servers, on
the same database, job and machine; the two take turns burst by burst, so both rows of each
condition come from the same minutes, whatever else the machine is doing.

The bot runs in its own process, as in production (Discord's side costs it nothing there); with
`--same-process` it shares the fake Discord's event loop as in the tests, so every command waits for
the fake's work on the other 49 as well (its CPU is then counted with the fake's).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bot_probe import GcPauses, LocalProbe, RemoteProbe, start_separate
from bench.bot_report import Phase, report
from bench.page_viewers import Viewers

# Only the standard library at the top, here and in the three modules above: a bot's process may import
# FieldLens from `--compare`'s DIR.

COMMANDS = [
    ("budget show", {}),
    ("dataset list", {}),
    ("dataset info", {"name": (3, "bench")}),
    ("train list", {}),
    ("train status", {"job": (4, 1)}),
    ("model list", {}),
]
TINY = {"input_size": 160, "alpha": 0.35, "weights": "none", "augment": False}
TICK = 1 / os.sysconf("SC_CLK_TCK")


# This process's (the fake Discord's) pauses: they delay the fake's reading of a reply, which the
# bench would otherwise count against the bot.
FAKE_GC = GcPauses()
FAKE_GC.install()


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds so far) of every process on the machine."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK)
    return found


def _tree_cpu(processes: dict[int, tuple[int, float]], root: int | None) -> float:
    """CPU seconds of `root` and everything it started (the worker and its training child)."""
    if root is None:
        return 0.0
    members, grew = {root}, True
    while grew:
        more = {pid for pid, (parent, _) in processes.items() if parent in members} - members
        members |= more
        grew = bool(more)
    return sum(processes[pid][1] for pid in members if pid in processes)


def _machine_cpu() -> float:
    """CPU seconds every core has spent busy (not idle, not waiting for I/O)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) * TICK


@dataclass
class Rig:
    """One bot under test: its fake Discord, its process (None: on the fake's loop), its probe, the
    pages open on its web server, and what it has measured per condition."""

    label: str
    world: Any
    probe: LocalProbe | RemoteProbe
    settings: dict[str, Any]
    process: Any = None
    viewers: Viewers | None = None
    phases: dict[str, Phase] = field(default_factory=dict)

    def phase(self, condition: str) -> Phase:
        return self.phases.setdefault(condition, Phase(f"{condition}{self.label}"))

    def stop(self) -> None:
        if self.viewers is not None:
            self.viewers.stop()
        if self.process is not None:
            self.process.terminate()
            self.process.join(30)
            self.world.run(self.world.fake.stop())
        else:
            self.world.close()


def cpu(rig: Rig, worker: int | None, viewers: list[int]) -> dict[str, float | None]:
    """CPU seconds so far of the bot, this process (the fake Discord), the training processes, every
    page viewer, and the whole machine."""
    processes = _processes()
    return {
        "bot": rig.probe.cpu(),
        "fake Discord": time.process_time(),
        "training": _tree_cpu(processes, worker),
        "page viewers": sum(_tree_cpu(processes, pid) for pid in viewers),
        "machine": _machine_cpu(),
    }


async def burst(world: Any, n: int) -> list[Any]:
    fake = world.fake
    sent = await asyncio.gather(
        *[
            fake.slash(COMMANDS[i % len(COMMANDS)][0], COMMANDS[i % len(COMMANDS)][1], guild=world.team_a)
            for i in range(n)
        ]
    )
    await fake.wait_for(lambda: all(i.callbacks for i in sent), 60, "every command to be answered")
    return sent


def measure(rig: Rig, phase: Phase, n: int, worker: int | None, viewers: list[int]) -> None:
    """One burst of `n` commands, recorded in `phase` with its stages and the CPU time around it."""
    rig.probe.take()  # drop what came before
    FAKE_GC.take()
    rig.probe.profile(True)
    before = cpu(rig, worker, viewers)
    sent = rig.world.run(burst(rig.world, n), 120)
    after = cpu(rig, worker, viewers)
    rig.probe.profile(False)
    times, pauses = rig.probe.take()
    used = {k: after[k] - was for k, was in before.items() if was is not None and after[k] is not None}
    for key, seconds in used.items():
        phase.cpu[key] = phase.cpu.get(key, 0.0) + seconds
    others = used["machine"] - sum(v for k, v in used.items() if k != "machine")
    phase.bursts.append(([i.first_response_at - i.dispatched_at for i in sent], max(others, 0.0)))
    phase.gc_pauses += pauses
    phase.fake_gc_pauses += FAKE_GC.take()
    phase.walls.append(max(i.first_response_at for i in sent) - min(i.dispatched_at for i in sent))
    for i in sent:
        total = i.first_response_at - i.dispatched_at
        phase.latencies.append(total)
        read, called, responded, written = times.get(i.id, (0.0, 0.0, 0.0, 0.0))
        if read and called and responded and written:
            marks = [i.dispatched_at, i.sent_at, read, called, responded, written, i.first_response_at]
            phase.stages.append((*(b - a for a, b in itertools.pairwise(marks)), total))


# -- the run ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _args() -> argparse.Namespace:
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
    parser.add_argument(
        "--pages", type=int, default=0, help="Job pages open in every other round while training."
    )
    parser.add_argument(
        "--compare",
        default="",
        metavar="DIR",
        help="Also run the bot from this other checkout of FieldLens, its bursts alternating with this "
        "one's, and report both.",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="Write cProfile statistics of the bot's event loop during the bursts to this file (the "
        "profiler slows the bot: its figures are not the bot's).",
    )
    args = parser.parse_args()
    if (args.compare or args.profile) and args.same_process:
        parser.error("--compare and --profile need the bot in its own process")
    return args


def start_rigs(args: argparse.Namespace, home: Path) -> list[Rig]:
    """This checkout's bot (and with --compare the other's), each with its own fake Discord and web
    port, serving the same two teams from the same database."""
    from storage.settings import Settings
    from testkit.world import World

    checkouts = [("", "")]
    if args.compare:
        checkouts = [(" [this]", ""), (f" [{Path(args.compare).name}]", os.path.abspath(args.compare))]
    rigs: list[Rig] = []
    for label, code in checkouts:
        port = _free_port()
        values: dict[str, Any] = {
            "home": home,
            "web_port": port,
            "web_secret": "bench-secret",
            "public_url": f"http://127.0.0.1:{port}",
            "notify_seconds": 3.0,
            "log_level": "WARNING",
        }
        world = World(Settings(**values))
        if args.same_process:
            probe: LocalProbe | RemoteProbe = LocalProbe()
            world.start()
            rigs.append(Rig(label, world, probe, values))
            continue
        profile = os.path.abspath(args.profile) if args.profile and not code else ""
        guilds = (rigs[0].world.team_a, rigs[0].world.team_b) if rigs else None
        process, probe = start_separate(world, values, code, profile, guilds)
        rigs.append(Rig(label, world, probe, values, process))
    return rigs


def main() -> None:
    args = _args()
    from bot.links import LinkSigner
    from storage.services import open_services
    from storage.settings import Settings
    from storage.voc.synth import make_voc_zip

    n = args.concurrent
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        rigs = start_rigs(args, home)
        settings = Settings(**rigs[0].settings)
        services = open_services(settings)  # this thread's own connection to the bots' database
        team = rigs[0].world.team_a.id
        services.datasets.add(team, "bench", make_voc_zip(images=200, seed=1))
        for rig in rigs:
            rig.world.run(burst(rig.world, n), 120)  # warm-up (first use of each command), not counted
        # The fake stands in for Discord's servers: a full collection of this process's heap (55 ms
        # measured) would otherwise be counted as the bot's latency. The bot freezes its own the same way.
        gc.collect()
        gc.freeze()

        def each(r: int) -> list[Rig]:
            return rigs if r % 2 == 0 else rigs[::-1]  # neither bot always goes first

        for r in range(args.rounds):
            for rig in each(r):
                measure(rig, rig.phase("idle"), n, None, [])
                time.sleep(1.0)
        job = services.jobs.create(team, ["bench"], steps=100_000, batch_size=16, max_minutes=60, config=TINY)
        env = {**os.environ, "FIELDLENS_HOME": str(home), "FIELDLENS_LOG_LEVEL": "WARNING"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "fieldlens", "worker"], env=env, stderr=subprocess.DEVNULL
        )
        training, with_pages = "while training", f"+ {args.pages} job pages open"
        try:
            while services.jobs.get(team, job.id).steps_completed < 20:
                time.sleep(0.5)
            for rig in rigs if args.pages else []:
                signer = LinkSigner.from_settings(Settings(**rig.settings))
                rig.viewers = Viewers(signer.page_url(team, f"/jobs/{job.id}"), args.pages)
            viewers = [rig.viewers for rig in rigs if rig.viewers is not None]
            pids = [v.process.pid for v in viewers]
            for r in range(args.rounds):
                conditions = [training, with_pages] if r % 2 == 0 else [with_pages, training]
                for condition in conditions if viewers else [training]:
                    for v in viewers:  # every bot's pages open, or none
                        if condition == with_pages:
                            v.open()
                        else:
                            v.close()
                    for rig in each(r):
                        phase = rig.phase(condition)
                        measure(rig, phase, n, worker.pid, pids)
                        phase.steps.append(services.jobs.get(team, job.id).steps_completed)
                        time.sleep(1.0)  # pages reload (every 2 s) during the condition
            counts = [list(v.counts) for v in viewers]
        finally:
            services.jobs.request_stop(team, job.id)
            worker.terminate()
            worker.wait(120)
            services.close()
            for rig in rigs:
                rig.stop()
    where = "on the fake Discord's loop" if args.same_process else "in its own process"
    which = f"each bot ({', '.join(r.label.strip() for r in rigs)})" if args.compare else "the bot"
    print(
        f"{args.rounds} rounds of {n} concurrent slash commands to {which} {where}, dispatch -> "
        f"first response, ms (load average {os.getloadavg()[0]:.1f} at the end):"
    )
    conditions = ["idle", training, with_pages] if args.pages else ["idle", training]
    report([rig.phases[c] for c in conditions for rig in rigs], os.cpu_count() or 1)
    for rig, (events, loads, seconds, _) in zip(rigs, counts, strict=False):
        print(
            f"The pages of the bot{rig.label} received {events:.0f} streamed events and loaded "
            f"{loads:.0f} times ({seconds / max(loads, 1) * 1000:.0f} ms a load)."
        )


if __name__ == "__main__":
    main()
