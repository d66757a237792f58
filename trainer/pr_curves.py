"""Precision-recall curves per label from a COCOeval run, small enough to keep with the metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pr_curves(
    precision: np.ndarray, scores: np.ndarray, recall: np.ndarray, labels: Sequence[str]
) -> dict[str, dict[str, list[float]]]:
    """At IoU 0.5, all areas, 100 detections: for each label its recall points, the precision there
    and the score threshold that reaches them (COCOeval's `eval["precision"]` and `eval["scores"]`,
    shaped [T, R, K, A, M], and `params.recThrs`). Points COCO could not reach are left out."""
    out = {}
    for k, name in enumerate(labels):
        p, s = precision[0, :, k, 0, -1], scores[0, :, k, 0, -1]
        reached = p > -1
        out[name] = {
            "recall": [round(float(r), 3) for r in recall[reached]],
            "precision": [round(float(v), 3) for v in p[reached]],
            "score": [round(float(v), 3) for v in s[reached]],
        }
    return out
