"""Choose each label's score threshold where F1 is highest, and one threshold for all labels.

A detection is right when it overlaps an unclaimed object of its own label with IoU >= 0.5; the
detections of one label in one image claim objects in order of score (as COCO matches), so the
detections kept by any threshold are a prefix of that order and one pass gives every threshold.

Thresholds are chosen among 0.01, 0.02, ... 0.99 (what a team can type into a Limelight or
`--threshold`), and precision and recall are those at exactly the chosen value. Ties go to the higher
threshold: the same F1 with fewer false alarms. When nothing is found at any threshold, the overall
one is the edge runtime's default. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from edge.thresholds import DEFAULT_THRESHOLD
from storage.thresholds import OperatingPoint, Thresholds

if TYPE_CHECKING:
    from trainer.evaluate import Detections  # a dataclass; importing it here would load TensorFlow

IOU_MATCH = 0.5
CANDIDATES = np.round(np.arange(1, 100) / 100, 2)

Truth = tuple[np.ndarray, np.ndarray]  # boxes [M, 4] (ymin, xmin, ymax, xmax) normalised, classes 1..C


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N, 4] with every box in b [M, 4] (corners, any consistent order)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    y0 = np.maximum(a[:, None, 0], b[None, :, 0])
    x0 = np.maximum(a[:, None, 1], b[None, :, 1])
    y1 = np.minimum(a[:, None, 2], b[None, :, 2])
    x1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def matched_scores(
    truths: Sequence[Truth], predictions: Sequence[Detections], class_id: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """For one class (1..C): every detection's score, whether it found an object, and the object count."""
    scores: list[float] = []
    hits: list[bool] = []
    objects = 0
    for (gt_boxes, gt_classes), det in zip(truths, predictions, strict=True):
        gt = np.asarray(gt_boxes).reshape(-1, 4)[np.asarray(gt_classes) == class_id]
        objects += len(gt)
        mine = np.flatnonzero(np.asarray(det.classes) == class_id)
        order = mine[np.argsort(-np.asarray(det.scores)[mine], kind="stable")]
        overlaps = _iou(np.asarray(det.boxes)[order], gt)
        claimed = np.zeros(len(gt), bool)
        for row, d in enumerate(order):
            free = np.where(claimed, -1.0, overlaps[row]) if len(gt) else np.zeros(0)
            best = int(np.argmax(free)) if len(free) else -1
            hit = best >= 0 and free[best] >= IOU_MATCH
            if hit:
                claimed[best] = True
            scores.append(float(det.scores[d]))
            hits.append(bool(hit))
    return np.asarray(scores, np.float32), np.asarray(hits, bool), objects


def point_at(scores: np.ndarray, hits: np.ndarray, objects: int, threshold: float) -> OperatingPoint:
    """Precision, recall and F1 of the detections scoring at least `threshold`."""
    kept = scores >= np.float32(threshold)  # in float32, as the edge runtime compares
    tp = int(np.count_nonzero(hits & kept))
    found = int(np.count_nonzero(kept))
    precision = tp / found if found else 0.0
    recall = tp / objects if objects else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return OperatingPoint(float(threshold), round(precision, 4), round(recall, 4), round(f1, 4), objects)


def best_point(scores: np.ndarray, hits: np.ndarray, objects: int) -> OperatingPoint | None:
    """The candidate threshold with the highest F1 (the higher one on a tie); None when nothing was found."""
    best = max((point_at(scores, hits, objects, t) for t in CANDIDATES), key=lambda p: (p.f1, p.score))
    return best if best.f1 > 0 else None


Matched = tuple[np.ndarray, np.ndarray, int]  # scores, hits, objects


def _per_class(
    truths: Sequence[Truth], predictions: Sequence[Detections], labels: Sequence[str]
) -> dict[str, Matched]:
    return {label: matched_scores(truths, predictions, k + 1) for k, label in enumerate(labels)}


def _pooled(per_class: dict[str, Matched]) -> Matched:
    parts = list(per_class.values())
    scores = np.concatenate([p[0] for p in parts] + [np.zeros(0, np.float32)])
    hits = np.concatenate([p[1] for p in parts] + [np.zeros(0, bool)])
    return scores, hits, sum(p[2] for p in parts)


def choose_thresholds(
    truths: Sequence[Truth],
    predictions: Sequence[Detections],
    labels: Sequence[str],
    chosen_on: str,
) -> Thresholds:
    """Per-label thresholds and one for all labels, each with the highest F1 on these images (the
    validation split). A Limelight takes one threshold; `fieldlens-edge` applies one per label."""
    per_class = _per_class(truths, predictions, labels)
    chosen = {label: best_point(*per_class[label]) for label in labels}
    pooled = _pooled(per_class)
    return Thresholds(
        overall=best_point(*pooled) or point_at(*pooled, DEFAULT_THRESHOLD),
        labels={label: point for label, point in chosen.items() if point is not None},
        chosen_on=chosen_on,
        images=len(truths),
    )


def measure(
    thresholds: Thresholds,
    truths: Sequence[Truth],
    predictions: Sequence[Detections],
    labels: Sequence[str],
) -> dict[str, OperatingPoint]:
    """The chosen thresholds on other images (the test split): "overall" and each label that has one."""
    per_class = _per_class(truths, predictions, labels)
    out = {
        label: point_at(*per_class[label], thresholds.labels[label].score)
        for label in labels
        if label in thresholds.labels
    }
    out["overall"] = point_at(*_pooled(per_class), thresholds.overall.score)
    return out


def keep(
    predictions: Sequence[Detections], labels: Sequence[str], thresholds: Thresholds
) -> list[Detections]:
    """The detections `fieldlens-edge` keeps by default: each scoring at least its label's threshold."""
    limits = np.array([thresholds.score_for(label) for label in labels] or [1.0], np.float32)
    out = []
    for det in predictions:
        classes = np.asarray(det.classes)
        mask = np.asarray(det.scores, np.float32) >= limits[np.clip(classes - 1, 0, len(limits) - 1)]
        out.append(
            replace(
                det,
                boxes=np.asarray(det.boxes)[mask],
                scores=np.asarray(det.scores)[mask],
                classes=classes[mask],
            )
        )
    return out
