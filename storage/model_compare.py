"""`model compare A B`: both int8 models on the same images, side by side.

The images are the first model's test split (else its validation split) of the datasets its job
trained on, or of a dataset named by the caller. Each image runs through both models in the same
loop (after one untimed warm-up run each, taking turns at going first), so both latencies are
measured on this machine under the same load. mAP comes from storage/coco.py,
the same measure the trainer uses. The caller hands in the detector (the edge runtime's
TFLiteDetector): storage never imports the edge runtime.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from storage.coco import coco_evaluate, coco_figures
from storage.domain import ImageRecord, Model, Split
from storage.errors import NotFound, UserError
from storage.model_folder import ModelFolder
from storage.services import Services

MAX_IMAGES = 200


class NothingToCompareOn(UserError):
    """There are no held-out images to compare the models on."""


class Found(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def box_norm(self) -> tuple[float, float, float, float]: ...  # xmin, ymin, xmax, ymax from 0 to 1


class Detector(Protocol):
    def detect(self, frame: np.ndarray) -> Sequence[Found]: ...


@dataclass(frozen=True)
class _Detections:
    boxes: np.ndarray  # [K, 4] ymin, xmin, ymax, xmax normalised
    scores: np.ndarray
    classes: np.ndarray  # 1..C in the first model's labels


@dataclass(frozen=True)
class Figures:
    model_id: int
    name: str
    map50: float
    map50_95: float
    per_label_ap50: dict[str, float]
    thresholds: str
    bytes: int
    median_ms: float


def _ap(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.3f}"  # no photo of the label among those compared


@dataclass(frozen=True)
class Comparison:
    images: int
    where: str  # "the test split of shapes"
    labels: list[str]
    first: Figures
    second: Figures
    left_out: int  # images beyond MAX_IMAGES

    def table(self) -> str:
        """Both models side by side, as fixed-width text."""
        a, b = self.first, self.second
        rows = [
            ("", f"model {a.model_id}", f"model {b.model_id}"),
            ("mAP@0.5", f"{a.map50:.3f}", f"{b.map50:.3f}"),
            ("mAP@0.5:0.95", f"{a.map50_95:.3f}", f"{b.map50_95:.3f}"),
            *[
                (
                    f"AP@0.5 {label}",
                    _ap(a.per_label_ap50.get(label)),
                    _ap(b.per_label_ap50.get(label)),
                )
                for label in self.labels
            ],
            ("threshold", a.thresholds, b.thresholds),
            ("size", f"{a.bytes / 1e6:.2f} MB", f"{b.bytes / 1e6:.2f} MB"),
            ("latency (median)", f"{a.median_ms:.1f} ms", f"{b.median_ms:.1f} ms"),
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )

    def heading(self) -> str:
        more = f" (the first {self.images}; {self.left_out} more left out)" if self.left_out else ""
        return (
            f"Model {self.first.model_id} ({self.first.name}) and model {self.second.model_id} "
            f"({self.second.name}) on {self.images} images, {self.where}{more}; latency measured here, "
            "in the same run:"
        )


def held_out_images(
    services: Services, team: str, model: Model, dataset: str | None = None
) -> tuple[list[ImageRecord], str]:
    """The images to compare on: the test split of the model's datasets, else their validation split."""
    if dataset is not None:
        datasets = [services.datasets.get(team, dataset)]
    elif model.job_id is not None:
        job = services.jobs.get(team, model.job_id)
        datasets = []
        for dataset_id in job.dataset_ids:
            try:
                datasets.append(services.datasets.get_by_id(team, dataset_id))
            except NotFound:
                continue
    else:
        datasets = []
    if not datasets:
        raise NothingToCompareOn(
            f"Model {model.id}'s training datasets are not known here (it was trained outside a job, or "
            "they were deleted). Name a dataset to compare on."
        )
    images = [image for d in datasets for image in services.datasets.images(d.id)]
    names = ", ".join(d.name for d in datasets)
    for split, words in ((Split.TEST, "test"), (Split.VAL, "validation")):
        chosen = [image for image in images if image.split == split]
        if chosen:
            return chosen, f"the {words} split of {names}"
    raise NothingToCompareOn(
        f"{names} has no test or validation images: nothing that model {model.id} was not trained on. "
        "Name a dataset the models have not seen."
    )


def _truth(image: ImageRecord, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    kept = [b for b in image.boxes if b.label in labels]
    boxes = np.array(
        [
            [b.ymin / image.height, b.xmin / image.width, b.ymax / image.height, b.xmax / image.width]
            for b in kept
        ],
        np.float32,
    ).reshape(-1, 4)
    return boxes, np.array([labels.index(b.label) + 1 for b in kept], np.int32)


def _detections(found: Sequence[Found], labels: list[str]) -> _Detections:
    """Detections in the first model's classes; a label it does not know cannot be right, and is left out."""
    known = [d for d in found if d.label in labels]
    return _Detections(
        np.array(
            [[d.box_norm[1], d.box_norm[0], d.box_norm[3], d.box_norm[2]] for d in known], np.float32
        ).reshape(-1, 4),
        np.array([d.score for d in known], np.float32),
        np.array([labels.index(d.label) + 1 for d in known], np.int32),
    )


def compare_models(
    services: Services,
    team: str,
    first: Model,
    second: Model,
    open_detector: Callable[[Path], Detector],
    dataset: str | None = None,
    max_images: int = MAX_IMAGES,
) -> Comparison:
    """Run both int8 models on the first model's held-out images; `open_detector(path)` must keep every
    detection (threshold 0), as mAP needs."""
    records, where = held_out_images(services, team, first, dataset)
    shown = records[:max_images]
    folders = [ModelFolder(first.path), ModelFolder(second.path)]
    manifests = [f.manifest() for f in folders]
    labels = list(manifests[0].labels)
    detectors = [open_detector(f.int8_model) for f in folders]
    truths: list[tuple[np.ndarray, np.ndarray]] = []
    found: tuple[list[_Detections], list[_Detections]] = ([], [])
    times: tuple[list[float], list[float]] = ([], [])
    for i, record in enumerate(shown):
        with Image.open(io.BytesIO(services.blobs.read(record.sha256))) as img:
            frame = np.asarray(img.convert("RGB"))
        if i == 0:
            for detector in detectors:  # the first run of an interpreter pays for setting it up: untimed
                detector.detect(frame)
        truths.append(_truth(record, labels))
        for k in (0, 1) if i % 2 == 0 else (1, 0):  # each goes first on every other image
            started = time.perf_counter()
            detections = detectors[k].detect(frame)
            times[k].append((time.perf_counter() - started) * 1000)
            found[k].append(_detections(detections, labels))
    figures = []
    for k, (model, folder, manifest) in enumerate(zip((first, second), folders, manifests, strict=True)):
        coco = coco_figures(coco_evaluate(truths, found[k], labels), labels, truths)
        t = manifest.thresholds
        figures.append(
            Figures(
                model.id,
                model.name,
                coco["map50"],
                coco["map50_95"],
                coco["per_class_ap50"],
                f"{t.overall.score:.2f}" if t else "none",
                folder.int8_model.stat().st_size,
                float(np.median(times[k])) if times[k] else 0.0,
            )
        )
    return Comparison(len(shown), where, labels, figures[0], figures[1], len(records) - len(shown))
