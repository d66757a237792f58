"""Datasets of a team: ingest (validate, store blobs and rows in one go), list, combine, delete.

A dataset is stored whole or not at all: blobs written for a refused or failed ingest are
removed again, and rows are written in one transaction after the blobs are durable.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from storage.blobs import BlobStore
from storage.db import ensure_team, parse_time, utcnow
from storage.domain import Box, Dataset, ImageRecord, JobState, Split
from storage.errors import (
    DatasetInUse,
    DatasetLabelsDiffer,
    DatasetRefused,
    InvalidName,
    NameTaken,
    NotFound,
)
from storage.preview import contact_sheet
from storage.voc.archive import Limits, open_archive
from storage.voc.lint import label_stats, lint
from storage.voc.reader import ImageDraft, plural, read_voc
from storage.voc.split import assign_splits

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
ACTIVE_JOB_STATES = [
    JobState.QUEUED,
    JobState.PREPARING,
    JobState.RUNNING,
    JobState.STOP_REQUESTED,
    JobState.STOPPING,
]


class BlobWriter:
    """Writes blobs on a few threads (file creation dominates ingest time) with bounded memory."""

    def __init__(self, blobs: BlobStore, threads: int = 4, in_flight: int = 32) -> None:
        self._blobs = blobs
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="blob")
        self._slots = threading.BoundedSemaphore(in_flight)
        self._futures: list[Future[tuple[str, bool]]] = []

    def put(self, data: bytes, digest: str) -> None:
        self._slots.acquire()
        future = self._pool.submit(self._blobs.put, data, digest, False)
        future.add_done_callback(lambda _f: self._slots.release())
        self._futures.append(future)

    def created(self) -> list[str]:
        """Wait for every write; return the digests this writer created (failed writes left out)."""
        wait(self._futures)
        return [f.result()[0] for f in self._futures if f.exception() is None and f.result()[1]]

    def finish(self) -> None:
        """Wait for every write; raise the first failure (a full disk, say)."""
        wait(self._futures)
        for f in self._futures:
            if (error := f.exception()) is not None:
                raise error

    def close(self) -> None:
        self._pool.shutdown(wait=True)


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
            "negative_images": self.negative_images,
            "warnings": d.warnings,
            "lint": d.lint,
            "errors": self.errors,
            "created_at": d.created_at.isoformat(),
            "parents": d.parents,
        }


def _row_to_dataset(row: dict) -> Dataset:
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
    )


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
        return [_row_to_dataset(r) for r in rows]

    def get(self, team_id: str, name: str) -> Dataset:
        rows = list(self.db.query("SELECT * FROM datasets WHERE team_id = ? AND name = ?", [team_id, name]))
        if not rows:
            known = ", ".join(d.name for d in self.list_team(team_id)[:10]) or "none yet"
            raise NotFound(f"No dataset named {name!r} in this team (datasets: {known}).")
        return _row_to_dataset(rows[0])

    def get_by_id(self, team_id: str, dataset_id: int) -> Dataset:
        rows = list(
            self.db.query("SELECT * FROM datasets WHERE team_id = ? AND id = ?", [team_id, dataset_id])
        )
        if not rows:
            raise NotFound(f"No dataset #{dataset_id} in this team.")
        return _row_to_dataset(rows[0])

    def images(self, dataset_id: int) -> list[ImageRecord]:
        """All images of a dataset with their boxes, in file-name order."""
        boxes: dict[int, list[Box]] = {}
        for b in self.db.query(
            "SELECT b.* FROM boxes b JOIN images i ON i.id = b.image_id WHERE i.dataset_id = ? ORDER BY b.id",
            [dataset_id],
        ):
            boxes.setdefault(b["image_id"], []).append(
                Box(
                    b["label"],
                    b["xmin"],
                    b["ymin"],
                    b["xmax"],
                    b["ymax"],
                    bool(b["difficult"]),
                    bool(b["truncated"]),
                )
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
            )
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
        """Validate and store a VOC zip (path or bytes) or folder as a new dataset of the team."""
        name = self._check_free(team_id, name)
        archive = open_archive(source, self.limits)
        writer = BlobWriter(self.blobs)
        try:
            read = read_voc(archive, writer.put)
            writer.finish()
            drafts = read.images
            warnings = read.warnings
            if not drafts:
                raise DatasetRefused(
                    "No usable image was found: every image needs an annotation file of the same name "
                    "(photo1.jpg with photo1.xml). " + " ".join(warnings),
                    warnings,
                )
            if not any(d.boxes for d in drafts):
                raise DatasetRefused(
                    f"None of the {plural(len(drafts), 'image')} has a box, so there is nothing to learn. "
                    "Label your objects in a tool such as labelImg or CVAT and export Pascal VOC.",
                    warnings,
                )
            self.blobs.flush()
            if not source_label:
                source_label = "upload" if isinstance(source, bytes) else Path(source).name
            dataset = self._insert(team_id, name, drafts, warnings, source_label, parents=[])
        except BaseException:
            self._forget_blobs(writer.created())
            raise
        finally:
            writer.close()
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
        splits: list[Split] | None = None,
    ) -> Dataset:
        if splits is None:
            splits = assign_splits([i.filename for i in images], self.val_fraction, self.split_seed)
        stats = label_stats(images)
        now = utcnow()
        try:
            with self.db.atomic():
                ensure_team(self.db, team_id)
                cur = self.db.execute(
                    "INSERT INTO datasets (team_id, name, created_at, image_count, box_count, label_counts,"
                    " warnings, lint, split_seed, val_fraction, source, parents)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        team_id,
                        name,
                        now,
                        len(images),
                        sum(s.boxes for s in stats),
                        json.dumps({s.label: s.boxes for s in sorted(stats, key=lambda s: s.label)}),
                        json.dumps(warnings),
                        json.dumps(lint(images)),
                        self.split_seed,
                        self.val_fraction,
                        source,
                        json.dumps(parents),
                    ],
                )
                dataset_id = cur.lastrowid
                for img, split in zip(images, splits, strict=True):
                    image_id = self.db.execute(
                        "INSERT INTO images (dataset_id, filename, sha256, format, width, height, split)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [dataset_id, img.filename, img.sha256, img.format, img.width, img.height, str(split)],
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
        base = set(parts[0].label_counts)
        for other in parts[1:]:
            labels = set(other.label_counts)
            if labels != base:
                only_a = ", ".join(sorted(base - labels)) or "none"
                only_b = ", ".join(sorted(labels - base)) or "none"
                raise DatasetLabelsDiffer(
                    f"Datasets {parts[0].name!r} and {other.name!r} have different labels (only in "
                    f"{parts[0].name!r}: {only_a}; only in {other.name!r}: {only_b}). Only datasets with "
                    "identical labels can be combined: rename the labels in your labelling tool and "
                    "upload again."
                )
        images: list[ImageRecord] = []
        warnings: list[str] = []
        for p in parts:
            images.extend(self.images(p.id))
            warnings.extend(f"{p.name}: {w}" for w in p.warnings)
        # Each image keeps the split it had, so no validation image leaks into training.
        dataset = self._insert(
            team_id,
            new_name,
            images,
            warnings,
            source="combined",
            parents=[p.id for p in parts],
            splits=[i.split for i in images],
        )
        return self._report(dataset, self.images(dataset.id))

    def delete(self, team_id: str, name: str) -> None:
        """Delete a dataset and the blobs no other dataset uses; refused while a job uses it."""
        dataset = self.get(team_id, name)
        placeholders = ", ".join("?" for _ in ACTIVE_JOB_STATES)
        job = self.db.execute(
            f"SELECT j.id, j.state FROM jobs j JOIN job_datasets jd ON jd.job_id = j.id "  # noqa: S608
            f"WHERE jd.dataset_id = ? AND j.state IN ({placeholders}) LIMIT 1",
            [dataset.id, *[str(s) for s in ACTIVE_JOB_STATES]],
        ).fetchone()
        if job:
            raise DatasetInUse(
                f"Dataset {name!r} is used by job #{job[0]}, which is {job[1]}. Stop the job or wait for "
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

    def preview(self, team_id: str, name: str, count: int = 12) -> bytes:
        """PNG contact sheet of up to `count` images (those with boxes first) with boxes drawn."""
        dataset = self.get(team_id, name)
        images = sorted(self.images(dataset.id), key=lambda i: (not i.boxes, i.filename))[:count]
        return contact_sheet([(self.blobs.read(i.sha256), i) for i in images], dataset.label_map.labels)
