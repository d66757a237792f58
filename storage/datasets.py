"""Datasets of a team: ingest (validate, store blobs and rows in one go), list, combine, delete.

A dataset is stored whole or not at all: blobs written for a refused or failed ingest are
removed again, and rows are written in one transaction after the blobs are durable.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlite_utils

from storage.blobs import BlobStore, BlobWriter
from storage.dataset_rows import (
    DatasetReport,
    check_name,
    row_to_box,
    row_to_dataset,
    row_to_image,
    split_counts,
)
from storage.db import ensure_team, marks, utcnow
from storage.domain import UNFINISHED_STATES, Box, Dataset, ImageRecord, LabelMap, Split
from storage.errors import (
    DatasetInUse,
    DatasetLabelsDiffer,
    DatasetRefused,
    NameTaken,
    NotFound,
)
from storage.voc.archive import Limits, open_archive
from storage.voc.lint import label_stats, leak_advice, lint, validation_advice
from storage.voc.reader import ImageDraft, plural, read_dataset
from storage.voc.split import SplitPlan, plan_splits, regroup

__all__ = ["DatasetReport", "DatasetStore", "check_name", "require_identical_labels", "split_counts"]

log = logging.getLogger(__name__)


def require_identical_labels(datasets: Sequence[Dataset]) -> LabelMap:
    """The label map the datasets share: datasets are trained on, or combined, only with identical labels."""
    first = datasets[0]
    base = set(first.label_counts)
    for other in datasets[1:]:
        labels = set(other.label_counts)
        if labels != base:
            only_a = ", ".join(sorted(base - labels)) or "none"
            only_b = ", ".join(sorted(labels - base)) or "none"
            raise DatasetLabelsDiffer(
                f"Datasets {first.name!r} and {other.name!r} have different labels (only in "
                f"{first.name!r}: {only_a}; only in {other.name!r}: {only_b}). Only datasets with "
                "identical labels can be trained on together or combined: rename the labels in your "
                "labelling tool and upload again."
            )
    return first.label_map


class DatasetStore:
    """Datasets of all teams; every call names the team, which sees only its own datasets."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        blobs: BlobStore,
        limits: Limits | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 1234,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.limits = limits or Limits()
        self.val_fraction = val_fraction
        self.split_seed = split_seed

    # -- reading -------------------------------------------------------------------------------

    def list_team(self, team_id: str) -> list[Dataset]:
        rows = self.db.query("SELECT * FROM datasets WHERE team_id = ? ORDER BY name", [team_id])
        return [row_to_dataset(r) for r in rows]

    def get(self, team_id: str, name: str) -> Dataset:
        rows = list(self.db.query("SELECT * FROM datasets WHERE team_id = ? AND name = ?", [team_id, name]))
        if not rows:
            known = ", ".join(d.name for d in self.list_team(team_id)[:10]) or "none yet"
            raise NotFound(f"No dataset named {name!r} in this team (datasets: {known}).")
        return row_to_dataset(rows[0])

    def get_by_id(self, team_id: str, dataset_id: int) -> Dataset:
        rows = list(
            self.db.query("SELECT * FROM datasets WHERE team_id = ? AND id = ?", [team_id, dataset_id])
        )
        if not rows:
            raise NotFound(f"No dataset #{dataset_id} in this team.")
        return row_to_dataset(rows[0])

    def images(self, dataset_id: int) -> list[ImageRecord]:
        """All images of a dataset with their boxes, in file-name order."""
        boxes: dict[int, list[Box]] = {}
        for b in self.db.query(
            "SELECT b.* FROM boxes b JOIN images i ON i.id = b.image_id WHERE i.dataset_id = ? ORDER BY b.id",
            [dataset_id],
        ):
            boxes.setdefault(b["image_id"], []).append(row_to_box(b))
        return [
            row_to_image(r, tuple(boxes.get(r["id"], ())))
            for r in self.db.query(
                "SELECT * FROM images WHERE dataset_id = ? ORDER BY filename, id", [dataset_id]
            )
        ]

    def report(self, team_id: str, name: str) -> DatasetReport:
        dataset = self.get(team_id, name)
        return self._report(dataset, self.images(dataset.id))

    @staticmethod
    def _report(dataset: Dataset, images: Sequence[ImageRecord]) -> DatasetReport:
        return DatasetReport(
            dataset=dataset,
            label_images={s.label: s.images for s in label_stats(images)},
            train_images=sum(1 for i in images if i.split is Split.TRAIN),
            val_images=sum(1 for i in images if i.split is Split.VAL),
            test_images=sum(1 for i in images if i.split is Split.TEST),
            negative_images=sum(1 for i in images if not i.boxes),
        )

    # -- writing -------------------------------------------------------------------------------

    def _check_free(self, team_id: str, name: str) -> str:
        name = check_name(name)
        if self.db.execute(
            "SELECT 1 FROM datasets WHERE team_id = ? AND name = ?", [team_id, name]
        ).fetchone():
            raise NameTaken(
                f"This team already has a dataset named {name!r}. Choose another name, or delete the "
                "old one first."
            )
        return name

    def add(
        self, team_id: str, name: str, source: Path | str | bytes, source_label: str = ""
    ) -> DatasetReport:
        """Validate and store a dataset zip (path or bytes) or folder as a new dataset of the team.

        Any layout `storage.voc.layouts` reads (Pascal VOC, XML beside photos, COCO, YOLO).
        """
        name = self._check_free(team_id, name)
        archive = open_archive(source, self.limits)
        writer = BlobWriter(self.blobs)
        try:
            read = read_dataset(archive, writer.put)
            drafts = read.images
            warnings = read.warnings
            if not drafts:
                raise DatasetRefused(
                    f"No usable image was found in this {read.layout.name} export: every photo needs its "
                    "labels (photo1.jpg with photo1.xml, or listed in the COCO/YOLO files). "
                    + " ".join(warnings),
                    warnings,
                )
            if not any(d.boxes for d in drafts):
                raise DatasetRefused(
                    f"None of the {plural(len(drafts), 'image')} has a box, so there is nothing to learn. "
                    "Label your objects in a tool such as labelImg or CVAT and export Pascal VOC.",
                    warnings,
                )
            if not source_label:
                source_label = "upload" if isinstance(source, bytes) else Path(source).name
            with ThreadPoolExecutor(1, thread_name_prefix="blob-sync") as background:
                durable = background.submit(self.blobs.flush)  # the disk works while the split is drawn
                plan = plan_splits(
                    [d.filename for d in drafts],
                    [d.phash for d in drafts],
                    [d.split_hint for d in drafts],
                    self.val_fraction,
                    self.split_seed,
                    read.layout.split_source,
                    labels=[{b.label for b in d.boxes} for d in drafts],
                )
                durable.result()  # no row names a blob before every blob is on disk
            if not any(s is Split.TRAIN for s in plan.splits):
                raise DatasetRefused(
                    f"The export puts none of its {plural(len(drafts), 'image')} in training (all are "
                    "validation or test). Export it again with a training split, or without any split.",
                    warnings,
                )
            dataset = self._insert(
                team_id,
                name,
                drafts,
                warnings,
                source_label,
                parents=[],
                plan=plan,
                layout=(read.layout.name, read.layout.converter),
            )
        except BaseException:
            self._forget_blobs(writer.created())
            raise
        finally:
            archive.close()
        log.info("team %s added dataset %s: %s images", team_id, name, dataset.image_count)
        return self._report(dataset, self.images(dataset.id))

    def _insert(
        self,
        team_id: str,
        name: str,
        images: Sequence[ImageDraft | ImageRecord],
        warnings: list[str],
        source: str,
        parents: list[int],
        plan: SplitPlan,
        layout: tuple[str, str],
    ) -> Dataset:
        stats = label_stats(images)
        now = utcnow()
        try:
            with self.db.atomic():
                ensure_team(self.db, team_id)
                cur = self.db.execute(
                    "INSERT INTO datasets (team_id, name, created_at, image_count, box_count, label_counts,"
                    " warnings, lint, split_seed, val_fraction, source, parents, layout, converter,"
                    " split_note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        team_id,
                        name,
                        now,
                        len(images),
                        sum(s.boxes for s in stats),
                        json.dumps({s.label: s.boxes for s in sorted(stats, key=lambda s: s.label)}),
                        json.dumps(warnings),
                        json.dumps(
                            lint(images)
                            + leak_advice(plan.leaks)
                            + validation_advice(images, plan.splits, plan.drawn)
                        ),
                        self.split_seed,
                        self.val_fraction,
                        source,
                        json.dumps(parents),
                        *layout,
                        plan.note,
                    ],
                )
                dataset_id = cur.lastrowid
                for img, split, group in zip(images, plan.splits, plan.dup_groups, strict=True):
                    image_id = self.db.execute(
                        "INSERT INTO images (dataset_id, filename, sha256, format, width, height, split,"
                        " phash, dup_group) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            dataset_id,
                            img.filename,
                            img.sha256,
                            img.format,
                            img.width,
                            img.height,
                            str(split),
                            f"{img.phash:016x}" if img.phash else "",
                            group,
                        ],
                    ).lastrowid
                    self.db.conn.executemany(
                        "INSERT INTO boxes (image_id, label, xmin, ymin, xmax, ymax, difficult, truncated)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                image_id,
                                b.label,
                                b.xmin,
                                b.ymin,
                                b.xmax,
                                b.ymax,
                                int(b.difficult),
                                int(b.truncated),
                            )
                            for b in img.boxes
                        ],
                    )
        except sqlite3.IntegrityError as e:
            if "UNIQUE" in str(e):
                raise NameTaken(
                    f"This team already has a dataset named {name!r}. Choose another name."
                ) from e
            raise
        return self.get(team_id, name)

    def _forget_blobs(self, digests: list[str]) -> None:
        """Remove blobs this ingest wrote, unless a committed image row uses them meanwhile."""
        unused = [
            d
            for d in digests
            if not self.db.execute("SELECT 1 FROM images WHERE sha256 = ? LIMIT 1", [d]).fetchone()
        ]
        self.blobs.delete(unused)

    def combine(self, team_id: str, new_name: str, names: Sequence[str]) -> DatasetReport:
        """A new dataset holding the images of `names`; they must have identical labels."""
        if len(names) < 2:
            raise DatasetRefused("Name at least two datasets to combine.")
        new_name = self._check_free(team_id, new_name)
        parts = [self.get(team_id, n) for n in dict.fromkeys(names)]
        require_identical_labels(parts)
        images: list[ImageRecord] = []
        warnings: list[str] = []
        for p in parts:
            images.extend(self.images(p.id))
            warnings.extend(f"{p.name}: {w}" for w in p.warnings)
        # Each image keeps the split it had, so no validation image leaks into training; near
        # copies across the datasets are looked for again and reported in the lint.
        plan = regroup([i.filename for i in images], [i.phash for i in images], [i.split for i in images])
        dataset = self._insert(
            team_id,
            new_name,
            images,
            warnings,
            source="combined",
            parents=[p.id for p in parts],
            plan=plan,
            layout=("combined", "+".join(sorted({p.converter for p in parts}))),
        )
        return self._report(dataset, self.images(dataset.id))

    def delete(self, team_id: str, name: str) -> None:
        """Delete a dataset and the blobs no other dataset uses; refused while a job uses it."""
        dataset = self.get(team_id, name)
        job = self.db.execute(
            f"SELECT j.id, j.state FROM jobs j JOIN job_datasets jd ON jd.job_id = j.id "  # noqa: S608
            f"WHERE jd.dataset_id = ? AND j.state IN ({marks(UNFINISHED_STATES)}) LIMIT 1",
            [dataset.id, *UNFINISHED_STATES],
        ).fetchone()
        if job:
            raise DatasetInUse(
                f"Dataset {name!r} is used by job {job[0]}, which is {job[1]}. Stop the job or wait for "
                "it to finish, then delete the dataset."
            )
        digests = [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT sha256 FROM images WHERE dataset_id = ?", [dataset.id]
            ).fetchall()
        ]
        with self.db.atomic():
            self.db.execute("DELETE FROM datasets WHERE id = ?", [dataset.id])
        self._forget_blobs(digests)
        log.info("team %s deleted dataset %s", team_id, name)

    def preview_images(
        self, team_id: str, name: str, count: int = 12
    ) -> tuple[list[tuple[bytes, list[tuple[str, float, float, float, float]]]], tuple[str, ...]]:
        """Up to `count` images (those with boxes first) as (bytes, boxes), and the labels, to draw.

        Drawing lives in `edge.draw` (storage imports no leaf): `contact_sheet(*preview_images(...))`.
        """
        dataset = self.get(team_id, name)
        images = sorted(self.images(dataset.id), key=lambda i: (not i.boxes, i.filename))[:count]
        return [
            (self.blobs.read(i.sha256), [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in i.boxes])
            for i in images
        ], dataset.label_map.labels
