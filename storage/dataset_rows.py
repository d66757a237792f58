"""What a stored dataset looks like to its readers: names, the report, rows as dataclasses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from storage.db import parse_time
from storage.domain import Box, Dataset, ImageRecord, Split
from storage.errors import InvalidName

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME_RE.match(name):
        raise InvalidName(
            f"{name!r} is not a valid name. Use 1 to 64 letters, digits, spaces, '-', '_' or '.', "
            "starting with a letter or digit."
        )
    return name


@dataclass(frozen=True, slots=True)
class DatasetReport:
    """What ingest and `dataset show` tell the team."""

    dataset: Dataset
    label_images: dict[str, int]
    train_images: int
    val_images: int
    test_images: int
    negative_images: int
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        d = self.dataset
        return {
            "id": d.id,
            "name": d.name,
            "images": d.image_count,
            "boxes": d.box_count,
            "labels": d.label_counts,
            "label_images": self.label_images,
            "train_images": self.train_images,
            "val_images": self.val_images,
            "test_images": self.test_images,
            "split": d.split_note,
            "layout": d.layout,
            "converter": d.converter,
            "negative_images": self.negative_images,
            "warnings": d.warnings,
            "lint": d.lint,
            "errors": self.errors,
            "created_at": d.created_at.isoformat(),
            "parents": d.parents,
        }


def split_counts(report: DatasetReport) -> str:
    """'1,200 train, 300 validation, 74 test' (test only when there is one)."""
    out = f"{report.train_images:,} train, {report.val_images:,} validation"
    return out + (f", {report.test_images:,} test" if report.test_images else "")


def row_to_dataset(row: dict) -> Dataset:
    return Dataset(
        id=row["id"],
        team_id=row["team_id"],
        name=row["name"],
        created_at=parse_time(row["created_at"]),  # type: ignore[arg-type]
        image_count=row["image_count"],
        box_count=row["box_count"],
        label_counts=json.loads(row["label_counts"]),
        warnings=json.loads(row["warnings"]),
        lint=json.loads(row["lint"]),
        split_seed=row["split_seed"],
        val_fraction=row["val_fraction"],
        source=row["source"],
        parents=json.loads(row["parents"]),
        layout=row["layout"],
        converter=row["converter"],
        split_note=row["split_note"],
    )


def row_to_image(row: dict, boxes: tuple[Box, ...]) -> ImageRecord:
    return ImageRecord(
        row["filename"],
        row["sha256"],
        row["format"],
        row["width"],
        row["height"],
        Split(row["split"]),
        boxes,
        row["id"],
        int(row["phash"], 16) if row["phash"] else 0,
        row["dup_group"],
    )


def row_to_box(row: dict) -> Box:
    return Box(
        row["label"],
        row["xmin"],
        row["ymin"],
        row["xmax"],
        row["ymax"],
        bool(row["difficult"]),
        bool(row["truncated"]),
    )
