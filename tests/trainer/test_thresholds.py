"""Thresholds where F1 is highest, per label and overall, on detections written by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edge.thresholds import DEFAULT_THRESHOLD
from storage.thresholds import Thresholds
from trainer.evaluate import Detections
from trainer.thresholds import choose_thresholds, keep, measure

BALL, CONE = 1, 2
LABELS = ("ball", "cone")
A = [0.1, 0.1, 0.3, 0.3]  # a box (ymin, xmin, ymax, xmax)
B = [0.5, 0.5, 0.9, 0.9]  # another, far from A


def image(truths: list[tuple[list[float], int]], found: list[tuple[list[float], int, float]]):
    gt = (np.array([b for b, _ in truths], np.float32).reshape(-1, 4), np.array([c for _, c in truths]))
    det = Detections(
        np.array([b for b, _, _ in found], np.float32).reshape(-1, 4),
        np.array([s for _, _, s in found], np.float32),
        np.array([c for _, c, _ in found], np.int32),
    )
    return gt, det


def split(images):
    return [t for t, _ in images], [d for _, d in images]


def balls() -> list:
    """Four balls: found at 0.9, 0.8 and 0.6, one missed; false alarms at 0.7 and 0.3."""
    return [
        image([(A, BALL)], [(A, BALL, 0.9)]),
        image([(A, BALL)], [(A, BALL, 0.8), (B, BALL, 0.7)]),
        image([(A, BALL)], [(A, BALL, 0.6), (B, BALL, 0.3)]),
        image([(A, BALL)], []),
    ]


def test_the_threshold_with_the_highest_f1_and_its_figures() -> None:
    truths, found = split(balls())
    chosen = choose_thresholds(truths, found, LABELS, "validation")
    ball = chosen.labels["ball"]
    # Kept from 0.31 to 0.60: three right, one false alarm, one missed. The higher end wins the tie.
    assert (ball.score, ball.precision, ball.recall, ball.f1, ball.truths) == (0.6, 0.75, 0.75, 0.75, 4)
    assert "cone" not in chosen.labels  # no cone anywhere: it uses the overall threshold
    assert chosen.score_for("cone") == chosen.overall.score == 0.6
    assert chosen.robot_sentence() == "robot: 0.60 (precision 0.75, recall 0.75 on the validation images)"


def test_each_label_gets_its_own_threshold_and_one_serves_all() -> None:
    cones = [
        image([(B, CONE)], [(B, CONE, 0.35)]),
        image([(B, CONE)], [(B, CONE, 0.32), (A, CONE, 0.2)]),
    ]
    truths, found = split(balls() + cones)
    chosen = choose_thresholds(truths, found, LABELS, "validation")
    assert chosen.labels["cone"].score == 0.32 and chosen.labels["cone"].f1 == 1.0
    assert chosen.labels["ball"].score == 0.6
    # One threshold for both: at 0.32 all five right ones and two false alarms (0.7, 0.3 is below).
    assert chosen.overall.score == 0.32 and chosen.overall.truths == 6
    assert chosen.overall.precision == pytest.approx(5 / 6, abs=1e-4)


def test_a_wrong_label_or_a_second_box_on_one_object_is_a_false_alarm() -> None:
    truths, found = split([image([(A, BALL)], [(A, BALL, 0.9), (A, BALL, 0.8), (A, CONE, 0.95)])])
    chosen = choose_thresholds(truths, found, LABELS, "validation")
    # From 0.81 to 0.90 the duplicate is gone and F1 is 1; the highest of those wins.
    assert chosen.labels["ball"].score == 0.9
    assert chosen.labels["ball"].precision == 1.0
    assert "cone" not in chosen.labels  # its only detection found no cone


def test_nothing_found_gives_the_edge_default() -> None:
    truths, found = split([image([(A, BALL)], []), image([(B, CONE)], [(A, CONE, 0.9)])])
    chosen = choose_thresholds(truths, found, LABELS, "validation")
    assert chosen.labels == {} and chosen.overall.score == DEFAULT_THRESHOLD and chosen.overall.f1 == 0


def test_thresholds_measured_on_other_images_and_kept_detections() -> None:
    truths, found = split(balls())
    chosen = choose_thresholds(truths, found, LABELS, "validation")
    test_truths, test_found = split([image([(A, BALL), (B, BALL)], [(A, BALL, 0.65), (B, BALL, 0.55)])])
    measured = measure(chosen, test_truths, test_found, LABELS)
    assert measured["ball"].precision == 1.0 and measured["ball"].recall == 0.5
    assert measured["overall"].recall == 0.5
    kept = keep(test_found, LABELS, chosen)
    assert kept[0].scores.tolist() == pytest.approx([0.65])


def test_thresholds_survive_the_manifest_round_trip() -> None:
    truths, found = split(balls())
    chosen = choose_thresholds(truths, found, LABELS, "validation")
    assert Thresholds.from_dict(chosen.to_dict()) == chosen
    assert b'"ball": 0.6' in chosen.packed()
