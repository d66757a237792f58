"""A dataset's images a page at a time, filtered by label and split, each with what is worth a look.

What marks an image: it is a near copy of others (same `dup_group`) or an exact copy (same bytes),
a warning or lint sentence names its file, it has no box, or a box too small for the model to find.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from storage.db import marks
from storage.domain import Box, Dataset, ImageRecord, Split
from storage.errors import NotFound
from storage.voc.lint import MODEL_INPUT, SMALL_BOX_PX


@dataclass(frozen=True, slots=True)
class SplitCounts:
    """Images per split, and boxes and images per label and split."""

    images: dict[str, int]  # split -> images
    boxes: dict[str, dict[str, int]]  # label -> split -> boxes
    label_images: dict[str, dict[str, int]]  # label -> split -> images with that label


@dataclass(frozen=True, slots=True)
class MarkedImage:
    image: ImageRecord
    marks: list[str] = field(default_factory=list)  # short phrases: "near copy of 2 others", ...


@dataclass(frozen=True, slots=True)
class ImagePage:
    images: list[MarkedImage]
    total: int  # images matching the filter
    page: int  # 1-based
    pages: int


class ImageBrowser:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def counts(self, dataset_id: int) -> SplitCounts:
        images = dict(
            self.db.execute(
                "SELECT split, COUNT(*) FROM images WHERE dataset_id = ? GROUP BY split", [dataset_id]
            ).fetchall()
        )
        boxes: dict[str, dict[str, int]] = {}
        label_images: dict[str, dict[str, int]] = {}
        for label, split, n_boxes, n_images in self.db.execute(
            "SELECT b.label, i.split, COUNT(*), COUNT(DISTINCT i.id) FROM boxes b"
            " JOIN images i ON i.id = b.image_id WHERE i.dataset_id = ? GROUP BY b.label, i.split"
            " ORDER BY b.label",
            [dataset_id],
        ):
            boxes.setdefault(label, {})[split] = n_boxes
            label_images.setdefault(label, {})[split] = n_images
        return SplitCounts(images, boxes, label_images)

    def page(
        self,
        dataset: Dataset,
        label: str | None = None,
        split: Split | None = None,
        page: int = 1,
        per_page: int = 24,
    ) -> ImagePage:
        """One page of the dataset's images (file-name order) with their boxes and marks."""
        where, args = "dataset_id = ?", list[object]([dataset.id])
        if split is not None:
            where += " AND split = ?"
            args.append(str(split))
        if label:
            where += " AND id IN (SELECT image_id FROM boxes WHERE label = ?)"
            args.append(label)
        total = self.db.execute(f"SELECT COUNT(*) FROM images WHERE {where}", args).fetchone()[0]  # noqa: S608
        pages = max(1, -(-total // per_page))
        page = min(max(page, 1), pages)
        rows = list(
            self.db.query(
                f"SELECT * FROM images WHERE {where} ORDER BY filename, id LIMIT ? OFFSET ?",  # noqa: S608
                [*args, per_page, (page - 1) * per_page],
            )
        )
        records = self._records(rows)
        return ImagePage(self._marked(dataset, records), total, page, pages)

    def image(self, dataset_id: int, image_id: int) -> ImageRecord:
        """One image of the dataset with its boxes (NotFound when it is not this dataset's)."""
        rows = list(
            self.db.query("SELECT * FROM images WHERE dataset_id = ? AND id = ?", [dataset_id, image_id])
        )
        if not rows:
            raise NotFound(f"No image #{image_id} in this dataset.")
        return self._records(rows)[0]

    def _records(self, rows: list[dict]) -> list[ImageRecord]:
        ids = [r["id"] for r in rows]
        boxes: dict[int, list[Box]] = {}
        for b in self.db.query(
            f"SELECT * FROM boxes WHERE image_id IN ({marks(ids)}) ORDER BY id",  # noqa: S608
            ids,
        ):
            boxes.setdefault(b["image_id"], []).append(
                Box(b["label"], b["xmin"], b["ymin"], b["xmax"], b["ymax"], bool(b["difficult"]))
            )
        return [
            ImageRecord(
                r["filename"],
                r["sha256"],
                r["format"],
                r["width"],
                r["height"],
                Split(r["split"]),
                tuple(boxes.get(r["id"], ())),
                r["id"],
                int(r["phash"], 16) if r["phash"] else 0,
                r["dup_group"],
            )
            for r in rows
        ]

    def _marked(self, dataset: Dataset, records: list[ImageRecord]) -> list[MarkedImage]:
        groups = {r.dup_group for r in records if r.dup_group is not None}
        group_sizes = dict(
            self.db.execute(
                "SELECT dup_group, COUNT(*) FROM images WHERE dataset_id = ?"  # noqa: S608
                f" AND dup_group IN ({marks(groups)}) GROUP BY dup_group",
                [dataset.id, *groups],
            ).fetchall()
        )
        digests = {r.sha256 for r in records}
        copies = dict(
            self.db.execute(
                "SELECT sha256, COUNT(*) FROM images WHERE dataset_id = ?"  # noqa: S608
                f" AND sha256 IN ({marks(digests)}) GROUP BY sha256",
                [dataset.id, *digests],
            ).fetchall()
        )
        sentences = [*dataset.warnings, *dataset.lint]
        out = []
        for r in records:
            found = []
            others = group_sizes.get(r.dup_group, 1) - 1
            if others > 0:
                found.append(f"near copy of {others} other{'s' if others > 1 else ''} (group {r.dup_group})")
            if copies.get(r.sha256, 1) > 1:
                found.append("exact copy of another image")
            if any(r.filename in s for s in sentences):
                found.append("named in a warning")
            if not r.boxes:
                found.append("no boxes")
            elif any(_tiny(b, r.width, r.height) for b in r.boxes):
                found.append(f"a box under {SMALL_BOX_PX} px at the model's input")
            out.append(MarkedImage(r, found))
        return out


def _tiny(box: Box, width: int, height: int) -> bool:
    """A box smaller than SMALL_BOX_PX on a side once the image is scaled to the model input."""
    return (
        min(box.width * MODEL_INPUT / max(width, 1), box.height * MODEL_INPUT / max(height, 1)) < SMALL_BOX_PX
    )
