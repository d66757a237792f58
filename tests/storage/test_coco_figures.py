"""Per-label AP: a label no evaluated image shows is not measured, which is not an AP of 0."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from storage.coco import coco_evaluate, coco_figures


@dataclass
class Found:
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


BALL = np.array([[0.1, 0.1, 0.4, 0.4]], np.float32)
CONE = np.array([[0.5, 0.5, 0.9, 0.8]], np.float32)


def test_a_label_without_ground_truth_is_left_out_and_a_missed_label_scores_zero() -> None:
    labels = ["ball", "cone", "gate"]  # no image shows a gate
    truths = [(BALL, np.array([1])), (CONE, np.array([2]))]
    found = [
        Found(BALL, np.array([0.9]), np.array([1])),
        Found(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)),
    ]
    figures = coco_figures(coco_evaluate(truths, found, labels), labels)
    assert figures["per_class_ap50"] == {"ball": pytest.approx(1.0), "cone": 0.0}
    assert figures["map50"] == pytest.approx(0.5)  # the mean over the two labels shown, as COCO averages


def test_without_any_evaluation_every_label_reads_zero() -> None:
    assert coco_figures(None, ["ball", "cone"])["per_class_ap50"] == {"ball": 0.0, "cone": 0.0}


def test_with_nothing_detected_only_the_labels_the_truths_show_score_zero() -> None:
    truths = [(BALL, np.array([1]))]
    nothing = [Found(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))]
    figures = coco_figures(coco_evaluate(truths, nothing, ["ball", "cone"]), ["ball", "cone"], truths)
    assert figures["per_class_ap50"] == {"ball": 0.0}
