"""The domain model as plain dataclasses and enums. No I/O here.

Boxes are in pixels of the stored image, (xmin, ymin, xmax, ymax), xmax > xmin, ymax > ymin.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

LOCAL_TEAM = "local"


class JobState(enum.StrEnum):
    """Job states as teams know them from ftc-ml."""

    QUEUED = "QUEUED"
    PREPARING = "PREPARING"
    RUNNING = "RUNNING"
    STOP_REQUESTED = "STOP_REQUESTED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    CANCELED = "CANCELED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TRY_AGAIN_LATER = "TRY_AGAIN_LATER"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {JobState.STOPPED, JobState.CANCELED, JobState.SUCCEEDED, JobState.FAILED, JobState.TRY_AGAIN_LATER}
)

# Legal transitions. A job whose worker died goes back to QUEUED (it resumes from its checkpoint).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.PREPARING, JobState.CANCELED, JobState.FAILED}),
    JobState.PREPARING: frozenset(
        {JobState.RUNNING, JobState.STOP_REQUESTED, JobState.FAILED, JobState.QUEUED, JobState.CANCELED}
    ),
    JobState.RUNNING: frozenset(
        {JobState.STOP_REQUESTED, JobState.SUCCEEDED, JobState.FAILED, JobState.QUEUED, JobState.STOPPING}
    ),
    JobState.STOP_REQUESTED: frozenset(
        {
            JobState.STOPPING,
            JobState.STOPPED,
            JobState.CANCELED,
            JobState.FAILED,
            JobState.SUCCEEDED,
            JobState.QUEUED,
        }
    ),
    JobState.STOPPING: frozenset({JobState.STOPPED, JobState.CANCELED, JobState.FAILED, JobState.QUEUED}),
    JobState.STOPPED: frozenset(),
    JobState.CANCELED: frozenset(),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.TRY_AGAIN_LATER: frozenset(),
}


class Split(enum.StrEnum):
    """Training, validation (choosing checkpoints and thresholds) and test (reported only)."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Box:
    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: bool = False
    truncated: bool = False

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        return self.ymax - self.ymin


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image of a dataset: its blob, real format and size, split and boxes."""

    filename: str
    sha256: str
    format: str  # Pillow format name: JPEG, PNG, ...
    width: int
    height: int
    split: Split
    boxes: tuple[Box, ...] = ()
    id: int | None = None
    phash: int = 0  # 64-bit difference hash of a small grey thumbnail (near-duplicate search)
    dup_group: int | None = None  # images of one dataset in the same group are near copies


@dataclass(frozen=True, slots=True)
class LabelMap:
    """Labels in training order; class id i+1 is labels[i] (0 is background)."""

    labels: tuple[str, ...]

    def id_of(self, label: str) -> int:
        return self.labels.index(label) + 1

    @classmethod
    def from_labels(cls, labels: set[str] | list[str]) -> LabelMap:
        return cls(tuple(sorted(set(labels))))


@dataclass(frozen=True, slots=True)
class Dataset:
    id: int
    team_id: str
    name: str
    created_at: datetime
    image_count: int
    box_count: int
    label_counts: dict[str, int]  # label -> number of boxes
    warnings: list[str] = field(default_factory=list)
    lint: list[str] = field(default_factory=list)
    split_seed: int = 0
    val_fraction: float = 0.2
    source: str = ""
    parents: list[int] = field(default_factory=list)  # ids of the datasets it combines
    layout: str = "Pascal VOC"  # what made the zip, in words ("Roboflow COCO")
    converter: str = "voc"  # how its boxes were read: voc | coco | yolo
    split_note: str = ""  # which split came from the export and which FieldLens drew

    @property
    def label_map(self) -> LabelMap:
        return LabelMap.from_labels(list(self.label_counts))


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    team_id: str
    state: JobState
    model: str
    steps: int
    batch_size: int
    max_minutes: int
    dataset_ids: list[int]
    created_at: datetime
    updated_at: datetime
    description: str = ""
    steps_completed: int = 0
    training_seconds: float = 0.0
    metrics: dict[str, object] = field(default_factory=dict)
    error: str | None = None
    from_model_id: int | None = None
    model_id: int | None = None
    checkpoint_dir: str | None = None
    worker_id: str | None = None
    heartbeat_at: datetime | None = None
    config: dict[str, object] = field(default_factory=dict)  # training settings beyond the columns
    attempts: int = 0  # times a worker started it
    stop_requested: bool = False

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


# Held by a worker: some process trains the job (or did, until its worker died: then it is recovered).
ACTIVE_STATES = frozenset({JobState.PREPARING, JobState.RUNNING, JobState.STOP_REQUESTED, JobState.STOPPING})
# Not ended: waiting in the queue or active. The datasets of such a job cannot be deleted.
UNFINISHED_STATES = ACTIVE_STATES | {JobState.QUEUED}


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One row of a job's history: a state change, progress, a checkpoint, a log line."""

    id: int
    job_id: int
    at: datetime
    kind: str  # state | progress | checkpoint | log
    state: JobState | None
    data: dict[str, object]


@dataclass(frozen=True, slots=True)
class Model:
    id: int
    team_id: str
    job_id: int | None
    name: str
    created_at: datetime
    path: str
    labels: list[str]
    metrics: dict[str, object] = field(default_factory=dict)
    parent_model_id: int | None = None
    int8_ok: bool | None = None  # passed the int8 check; None: registered before it was recorded
    promoted: bool = False  # the model the team chose for its robots

    @property
    def flagged(self) -> bool:
        """Failed the int8 check: never served to a robot, and cannot be promoted."""
        return self.int8_ok is False


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    team_id: str
    at: datetime
    minutes: float  # positive: credit, negative: charge
    reason: str
    job_id: int | None = None
