"""Predictions next to the ground truth on a few fixed validation images, saved at every checkpoint.

The job page shows them with a slider, so a team sees the detector learn: the first validation
images (the same ones every checkpoint), ground truth on the left, predictions at the score
threshold on the right, one row per image, as a small JPEG in the job's folder
(storage/job_folder.py names it).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from edge.draw import draw_boxes
from storage.blobs import atomic_write
from storage.job_folder import JobFolder
from trainer import evaluate
from trainer.config import TrainConfig
from trainer.data import ImageCache, Sample

SAMPLE_IMAGES = 4
TILE = 192  # pixels per side of each picture in the grid
GAP = 4


def save_samples(
    workdir: Path,
    step: int,
    predict: object,
    cache: ImageCache | None,
    samples: Sequence[Sample],
    config: TrainConfig,
) -> None:
    """Write the checkpoint's predictions picture (nothing without validation images)."""
    if cache is None or not samples:
        return
    n = min(SAMPLE_IMAGES, len(samples))
    images = np.asarray(cache.images[:n])
    detections = evaluate.detect(predict, images)
    rows = [
        (image, _truth(s, config.labels), _predicted(d, config.labels, config.score_threshold))
        for image, s, d in zip(images, samples[:n], detections, strict=True)
    ]
    atomic_write(JobFolder(workdir).sample(step), samples_picture(rows, config.labels))


Boxes = list[tuple[str, float, float, float, float]]  # (label text, xmin, ymin, xmax, ymax) in 0..1


def _truth(sample: Sample, labels: Sequence[str]) -> Boxes:
    return [
        (labels[c - 1], b[1], b[0], b[3], b[2]) for b, c in zip(sample.boxes, sample.classes, strict=True)
    ]


def _predicted(det: evaluate.Detections, labels: Sequence[str], threshold: float) -> Boxes:
    keep = det.scores >= threshold
    return [
        (f"{labels[c - 1]} {s:.2f}", b[1], b[0], b[3], b[2])
        for b, c, s in zip(det.boxes[keep], det.classes[keep], det.scores[keep], strict=True)
    ]


def samples_picture(rows: Sequence[tuple[np.ndarray, Boxes, Boxes]], labels: Sequence[str]) -> bytes:
    """JPEG: one row per image (uint8 [S, S, 3]), ground truth left, predictions right."""
    sheet = Image.new("RGB", (2 * TILE + GAP, len(rows) * (TILE + GAP) - GAP), (255, 255, 255))
    for i, (image, truth, predicted) in enumerate(rows):
        for j, boxes in enumerate((truth, predicted)):
            tile = Image.fromarray(np.asarray(image)).resize((TILE, TILE), Image.Resampling.BILINEAR)
            draw_boxes(tile, boxes, labels, scale=TILE)
            sheet.paste(tile, (j * (TILE + GAP), i * (TILE + GAP)))
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=85)
    return out.getvalue()
