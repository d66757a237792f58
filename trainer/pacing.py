"""How far along a run is and when it ends: the learning-rate schedule (which follows steps and
time), early stopping (on validation fitness) and the step timer (speed, and where the time went)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """The learning rate by progress through the run: linear warm-up to `peak`, then cosine to zero.

    Progress is max(step / steps, seconds / max_seconds), so a job that its time limit ends still
    gets the whole decay (the low-rate end that tightens boxes) instead of stopping at the peak rate.
    """

    peak: float
    steps: int
    warmup_steps: int
    max_seconds: float | None = None  # the run's whole time budget, earlier attempts included

    def progress(self, step: int, seconds: float) -> float:
        by_time = seconds / self.max_seconds if self.max_seconds else 0.0
        return min(max(step / max(self.steps, 1), by_time), 1.0)

    def __call__(self, step: int, seconds: float = 0.0) -> float:
        p = self.progress(step, seconds)
        warm = min(self.warmup_steps, self.steps // 5) / max(self.steps, 1)
        if p < warm:
            return self.peak * p / warm
        return 0.5 * self.peak * (1 + math.cos(math.pi * (p - warm) / max(1 - warm, 1e-9)))


@dataclass
class EarlyStopping:
    """Stop when validation fitness has not improved for `patience` evaluations (None: never)."""

    patience: int | None
    best: float = -1.0
    without_gain: int = 0

    def update(self, fitness: float) -> bool:
        """Record an evaluation; True when training should stop."""
        if fitness > self.best:
            self.best, self.without_gain = fitness, 0
        else:
            self.without_gain += 1
        return self.patience is not None and self.patience > 0 and self.without_gain >= self.patience


class StepTimer:
    """Seconds per step as a moving average; the first step of a run (tracing) is left out."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.seconds_per_step: float | None = None
        self.steps = 0
        # where the run's wall-clock time went (bench/train.py prints it)
        self.split = {"waiting for data": 0.0, "train step": 0.0, "evaluation and checkpoints": 0.0}

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.split[name] += time.monotonic() - start

    def tick(self) -> None:
        now = time.monotonic()
        if self.steps:
            dt = now - self.last
            self.seconds_per_step = (
                dt if self.seconds_per_step is None else 0.9 * self.seconds_per_step + 0.1 * dt
            )
        self.steps += 1
        self.last = now

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
