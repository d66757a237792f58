"""Evaluation: detections from the network, and COCO metrics via pycocotools.

Boxes handed around here are (ymin, xmin, ymax, xmax) normalised; classes are 1..C.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from storage.coco import coco_evaluate, coco_figures
from trainer import box_coder
from trainer.loss import detection_loss
from trainer.models.detector import Detector
from trainer.postprocess import PostProcess, make_predict_fn
from trainer.pr_curves import pr_curves

__all__ = [
    "Detections",
    "PostProcess",
    "coco_metrics",
    "confusion_matrix",
    "detect",
    "detect_with_loss",
    "fitness",
    "make_loss_fn",
    "make_predict_fn",
]

IOU_MATCH = 0.5


@dataclass
class Detections:
    boxes: np.ndarray  # [K, 4]
    scores: np.ndarray  # [K]
    classes: np.ndarray  # [K] int, 1..C


def detect(predict, images: np.ndarray, batch_size: int = 16) -> list[Detections]:
    out = []
    for start in range(0, len(images), batch_size):
        out.extend(_detections(*predict(np.asarray(images[start : start + batch_size]))[:4]))
    return out


def _detections(boxes, scores, classes, valid) -> list[Detections]:
    return [
        Detections(b[:n], s[:n], c[:n].astype(np.int32) + 1)
        for b, s, c, n in zip(boxes.numpy(), scores.numpy(), classes.numpy(), valid.numpy(), strict=True)
    ]


def make_loss_fn(detector: Detector) -> Callable[[tf.Tensor, tf.Tensor, Sequence], float]:
    """(box encodings, logits, the batch's samples) -> the batch's detection loss (no weight decay),
    traced once: the targets by the detector's own matching, the loss the trainer minimises."""
    anchors = tf.constant(detector.anchors)
    options = detector.config.loss_options()
    match = detector.traced_match

    @tf.function(reduce_retracing=True)
    def batch_loss(box_p, logits, box_t, cls_t, weights):
        return detection_loss(box_p, logits, box_t, cls_t, weights, anchors, **options)["total"]

    def loss(box_p: tf.Tensor, logits: tf.Tensor, samples: Sequence) -> float:
        targets = [
            match(tf.constant(s.boxes.reshape(-1, 4), tf.float32), tf.constant(s.classes, tf.int32))
            for s in samples
        ]
        box_t, cls_t, weights = (tf.stack(x) for x in zip(*targets, strict=True))
        return float(batch_loss(box_p, logits, box_t, cls_t, weights))

    return loss


def detect_with_loss(
    predict, loss_fn, images: np.ndarray, samples: Sequence, batch_size: int = 16
) -> tuple[list[Detections], float]:
    """`images`' detections and the validation loss per image, from one pass of the network: the loss
    is taken from the very box encodings and logits that were decoded (eval mode)."""
    detections: list[Detections] = []
    total = 0.0
    for start in range(0, len(images), batch_size):
        batch = samples[start : start + batch_size]
        *found, box_p, logits = predict(np.asarray(images[start : start + batch_size]))
        detections.extend(_detections(*found))
        total += loss_fn(box_p, logits, batch) * len(batch)
    return detections, total / max(len(images), 1)


def fitness(metrics: dict) -> float:
    """How good a checkpoint is, for choosing one: mostly mAP@0.5:0.95 (tight boxes), a little mAP@0.5."""
    return 0.1 * float(metrics.get("map50", 0.0)) + 0.9 * float(metrics.get("map50_95", 0.0))


def coco_metrics(
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    predictions: Sequence[Detections],
    labels: Sequence[str],
    score_threshold: float = 0.3,
) -> dict[str, object]:
    """COCO mAP@0.5 and @0.5:0.95, per-class AP@0.5 (storage/coco.py), precision-recall curves,
    precision/recall at `score_threshold`, and a confusion matrix (rows: true label or 'background',
    columns: predicted label or 'missed')."""
    ev = coco_evaluate(truths, predictions, labels)
    metrics: dict[str, object] = coco_figures(ev, labels, truths)
    if ev is not None:
        metrics["pr_curves"] = pr_curves(ev.eval["precision"], ev.eval["scores"], ev.params.recThrs, labels)
    metrics.update(_threshold_stats(truths, predictions, labels, score_threshold))
    return metrics


def confusion_matrix(
    truths: Sequence[tuple[np.ndarray, np.ndarray]], predictions: Sequence[Detections], labels: Sequence[str]
) -> list[list[int]]:
    """The confusion matrix of every detection given (filter them by score first), laid out as in
    `coco_metrics`: rows true label then background, columns predicted label then missed."""
    stats = _threshold_stats(truths, predictions, labels, 0.0)
    return stats["confusion"]["matrix"]  # type: ignore[index]


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    return box_coder.iou(tf.constant(a, tf.float32), tf.constant(b, tf.float32)).numpy()


def _threshold_stats(truths, predictions, labels, threshold: float) -> dict[str, object]:
    """Precision, recall and a confusion matrix at one score threshold (greedy IoU >= 0.5 matching)."""
    c = len(labels)
    confusion = np.zeros(
        (c + 1, c + 1), np.int64
    )  # last row: background (false positive); last column: missed
    tp = fp = fn = 0
    for (gt_boxes, gt_classes), det in zip(truths, predictions, strict=True):
        keep = det.scores >= threshold
        boxes, classes = det.boxes[keep], det.classes[keep]
        overlaps = _iou_matrix(np.asarray(gt_boxes), boxes)
        used = set()
        for g in np.argsort(-overlaps.max(axis=1)) if len(boxes) else range(len(gt_boxes)):
            candidates = (
                [d for d in np.argsort(-overlaps[g]) if d not in used and overlaps[g, d] >= IOU_MATCH]
                if len(boxes)
                else []
            )
            if candidates:
                d = candidates[0]
                used.add(d)
                confusion[gt_classes[g] - 1, classes[d] - 1] += 1
                if classes[d] == gt_classes[g]:
                    tp += 1
                else:
                    fp += 1
                    fn += 1
            else:
                confusion[gt_classes[g] - 1, c] += 1
                fn += 1
        for d in range(len(boxes)):
            if d not in used:
                confusion[c, classes[d] - 1] += 1
                fp += 1
    return {
        "score_threshold": threshold,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "confusion": {"labels": [*labels, "background/missed"], "matrix": confusion.tolist()},
    }
