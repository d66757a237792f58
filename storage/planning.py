"""Before a job is queued: check the request, resolve its datasets, count their images, make the plan.

The arithmetic of a plan (batch size, epochs, duration) is storage/plan.py's; this module adds what
needs the database: the datasets, their image counts and this machine's measured speed.
"""

from __future__ import annotations

import sqlite_utils

from storage.datasets import DatasetStore, require_identical_labels
from storage.db import marks
from storage.errors import NoTrainingImages, OutOfRange
from storage.plan import CHECKPOINT_EVERY, DEFAULT_IMAGES_PER_SECOND, DEFAULT_MODEL, MODELS, Plan, make_plan

MAX_STEPS = 200_000
MAX_BATCH = 512


def require_training_images(count: int) -> None:
    if not count:
        raise NoTrainingImages(
            "These datasets have no training images. Upload more images (at least a few dozen) first."
        )


class JobPlanner:
    def __init__(self, db: sqlite_utils.Database, datasets: DatasetStore, max_minutes: int) -> None:
        self.db = db
        self.datasets = datasets
        self.max_minutes = max_minutes

    def images_per_second(self, model: str) -> float:
        """Measured on this machine by the last finished job of `model`, else the benchmark figure."""
        row = self.db.execute(
            "SELECT json_extract(metrics, '$.images_per_second') FROM jobs WHERE model = ? AND state IN"
            " ('SUCCEEDED', 'STOPPED') AND json_extract(metrics, '$.images_per_second') > 0"
            " ORDER BY id DESC LIMIT 1",
            [model],
        ).fetchone()
        return float(row[0]) if row else DEFAULT_IMAGES_PER_SECOND.get(model, 20.0)

    def check(self, model: str, steps: int, batch_size: int, max_minutes: int) -> None:
        """Refuse numbers outside their ranges, each with the range."""
        if model not in MODELS:
            raise OutOfRange(f"Unknown model {model!r}. Choose one of: {', '.join(MODELS)}.")
        if not 1 <= steps <= MAX_STEPS:
            raise OutOfRange(f"Steps must be between 1 and {MAX_STEPS}, not {steps}.")
        if not 1 <= batch_size <= MAX_BATCH:
            raise OutOfRange(f"Batch size must be between 1 and {MAX_BATCH}, not {batch_size}.")
        if not 1 <= max_minutes <= self.max_minutes:
            raise OutOfRange(f"Max minutes must be between 1 and {self.max_minutes}, not {max_minutes}.")

    def plan(
        self,
        team_id: str,
        dataset_names: list[str],
        model: str = DEFAULT_MODEL,
        steps: int = 1000,
        batch_size: int = 32,
        max_minutes: int = 60,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> tuple[Plan, list[int], tuple[str, ...]]:
        """Check the arguments and datasets; return the plan, the dataset ids and the labels."""
        self.check(model, steps, batch_size, max_minutes)
        if not dataset_names:
            raise OutOfRange("Name at least one dataset to train on.")
        datasets = [self.datasets.get(team_id, name) for name in dict.fromkeys(dataset_names)]
        labels = require_identical_labels(datasets).labels
        ids = [d.id for d in datasets]
        counts = dict(
            self.db.execute(
                f"SELECT split, COUNT(*) FROM images WHERE dataset_id IN ({marks(ids)}) GROUP BY split",  # noqa: S608
                ids,
            ).fetchall()
        )
        require_training_images(counts.get("train", 0))
        p = make_plan(
            steps,
            batch_size,
            counts.get("train", 0),
            counts.get("val", 0),
            self.images_per_second(model),
            max_minutes,
            checkpoint_every,
            counts.get("test", 0),
        )
        return p, ids, labels
