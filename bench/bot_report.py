"""The tables bench/bot.py prints: latency per condition, where a command's time goes, what the cores
did during a burst, and each burst's slowest response. Only the standard library: the bot's process
(which may run FieldLens from another checkout, `--compare DIR`) imports bench/bot.py and so this.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

STAGES = (
    "fake sends event",  # the fake Discord writes the gateway frame (Discord's side)
    "waits for bot loop",  # the frame waits until the bot's event loop reads it
    "discord.py parses",  # discord.py turns it into a call of the command's handler
    "FieldLens handler",  # the handler, up to its response
    "discord.py sends",  # discord.py and aiohttp write the response's HTTP request
    "fake reads reply",  # the fake Discord reads it (Discord's side)
)


@dataclass
class Phase:
    """Everything measured over the bursts of one condition."""

    label: str
    latencies: list[float] = field(default_factory=list)
    stages: list[tuple[float, ...]] = field(default_factory=list)  # each of STAGES, then the total
    walls: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    gc_pauses: list[float] = field(default_factory=list)
    fake_gc_pauses: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    bursts: list[tuple[list[float], float]] = field(default_factory=list)  # latencies, others' CPU


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def report(phases: list[Phase], cores: int) -> None:
    width = max(len(p.label) for p in phases) + 2
    print(f"{'':<{width}}{'median':>9}{'p99':>9}{'max':>9}{'typical burst':>15}   n")
    for p in phases:
        ms = [s * 1000 for s in p.latencies]
        typical = statistics.median(max(latencies) for latencies, _ in p.bursts) * 1000
        print(
            f"{p.label:<{width}}{statistics.median(ms):9.1f}{_p99(ms):9.1f}{max(ms):9.1f}{typical:15.1f}"
            f"   {len(ms)}" + (f"   (job at step {p.steps[0]}-{p.steps[-1]})" if p.steps else "")
        )
    print(
        "(typical burst: the median over the bursts of each one's slowest response; the p99 is about the "
        "slowest burst's)"
    )
    print("\nWhere a command's time goes, ms (median over all commands / mean over the slowest 5%):")
    print(f"{'':<{width}}" + "".join(f"{s:>20}" for s in STAGES))
    for p in phases:
        if not p.stages:
            continue
        slow = sorted(p.stages, key=lambda s: s[-1])[-max(1, len(p.stages) // 20) :]
        cells = [
            f"{statistics.median(s[k] for s in p.stages) * 1000:.1f} / "
            f"{statistics.mean(s[k] for s in slow) * 1000:.1f}"
            for k in range(len(STAGES))
        ]
        print(f"{p.label:<{width}}" + "".join(f"{c:>20}" for c in cells))
    print(
        f"\nWhat the {cores} cores did during a burst, ms per burst (first dispatch to last response; "
        "processes other than\nthe bot and this one from /proc in 10 ms ticks, so approximate):"
    )
    columns = ["bot", "fake Discord", "training", "page viewers", "others"]
    header = "".join(f"{c:>14}" for c in columns)
    print(f"{'':<{width}}{'burst':>8}{'capacity':>10}{header}   GC pauses per burst: bot; fake")
    for p in phases:
        bursts = len(p.walls)
        cpu = dict(p.cpu)
        ours = sum(cpu.get(c, 0.0) for c in columns[:4])
        cpu["others"] = max(cpu.get("machine", 0.0) - ours, 0.0)
        cells = "".join(
            f"{cpu[c] / bursts * 1000:14.1f}" if c in cpu else f"{'(in fake)':>14}" for c in columns
        )
        wall = statistics.mean(p.walls) * 1000
        gc_text = "; ".join(
            f"{len(pauses) / bursts:.0f}, {sum(pauses) / bursts * 1000:.1f} ms "
            f"(longest {max(pauses, default=0) * 1000:.1f} ms)"
            for pauses in (p.gc_pauses, p.fake_gc_pauses)
        )
        print(f"{p.label:<{width}}{wall:8.1f}{wall * cores:10.1f}{cells}   {gc_text}")
    print("\nEach burst's slowest response, ms (and the CPU other processes took during it, ms):")
    for p in phases:
        each = " ".join(f"{max(ms) * 1000:.0f} ({others * 1000:.0f})" for ms, others in p.bursts)
        print(f"{p.label:<{width}}{each}")
