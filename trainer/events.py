"""What a training run reports through `on_event`, in order, and what it returns.

    Started     once, before the first step (its `step` is past 0 when the run resumed)
    Step        after every step
    Checkpoint  after every evaluation and checkpoint
    Finished    once, at the end; carries the TrainResult that `Trainer.run` returns

`to_json(event)` is the event as the job's progress records store it (with its `kind`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Started:
    kind: ClassVar[str] = "started"
    step: int
    steps: int
    device: str  # "GPU" or "CPU"


@dataclass(frozen=True)
class Step:
    kind: ClassVar[str] = "step"
    step: int
    steps: int
    loss: dict[str, float]  # class, box, giou, total (what validation measures too) and l2 (weight decay)
    images_per_second: float
    eta_seconds: float | None  # None until the speed is known (after the second step)
    elapsed_seconds: float  # of this run, not counting earlier runs of a resumed job
    learning_rate: float


@dataclass(frozen=True)
class Checkpoint:
    kind: ClassVar[str] = "checkpoint"
    step: int
    metrics: dict[str, Any]  # the evaluation: map50, map50_95, per_class_ap50, val_loss, train_loss...
    path: str


@dataclass
class TrainResult:
    steps_completed: int
    reason: str  # completed | stop_requested | max_time | early_stopping
    seconds: float
    checkpoint: Path | None  # latest
    best_checkpoint: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)  # of the last evaluation
    images_per_second: float = 0.0
    time_split: dict[str, float] = field(default_factory=dict)  # seconds: data wait, step, evaluation


@dataclass(frozen=True)
class Finished:
    kind: ClassVar[str] = "finished"
    result: TrainResult


Event = Started | Step | Checkpoint | Finished


def to_json(event: Event) -> dict[str, Any]:
    data = asdict(event)
    if isinstance(event, Finished):
        data = {k: v for k, v in data["result"].items() if k != "metrics"}
    return {"kind": event.kind, **data}
