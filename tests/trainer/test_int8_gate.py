"""The int8 gate judges the mean drop over several evaluations (trainer/verify.py, trainer/deliver.py)."""

from __future__ import annotations

import numpy as np

from storage.model_folder import Metrics
from trainer.deliver import INT8_DROP, _verdict, int8_close_enough
from trainer.verify import gate_copies, perturbed


def _metrics(float50: float, int8_50: float, drop_mean: list[float] | None = None) -> Metrics:
    by_model = {INT8_DROP: {"evaluations": 3, "mean": drop_mean}} if drop_mean else {}
    return Metrics(float50, int8_50, 0.5, 0.5, by_model)


def test_the_gate_takes_the_mean_drop_when_there_is_one() -> None:
    # one evaluation 0.03 below, but 0.01 on average over three: within 0.02
    assert int8_close_enough(_metrics(0.80, 0.77, drop_mean=[0.01, 0.0]))
    assert not int8_close_enough(_metrics(0.80, 0.77))
    # one evaluation level, but 0.025 below on average: flagged, on either metric
    assert not int8_close_enough(_metrics(0.80, 0.80, drop_mean=[0.025, 0.0]))
    assert not int8_close_enough(_metrics(0.80, 0.80, drop_mean=[0.0, 0.021]))
    assert int8_close_enough(_metrics(0.80, 0.80, drop_mean=[0.02, -0.01]))
    assert int8_close_enough(_metrics(0.80, 0.78))  # exactly 0.02 below passes, float rounding or not


def test_the_verdict_says_what_the_mean_was() -> None:
    metrics = _metrics(0.80, 0.77, drop_mean=[0.012, -0.004])
    verdict = _verdict(metrics, int8_close_enough(metrics), "validation")
    assert verdict.startswith("int8 mAP@0.5 0.770 vs float 0.800")
    assert (
        "2 copies with invisible noise, int8 is on average 0.012 below float on mAP@0.5 and 0.004 "
        "above float on mAP@0.5:0.95" in verdict
    )
    flagged = _metrics(0.80, 0.80, drop_mean=[0.03, 0.0])
    assert _verdict(flagged, int8_close_enough(flagged), "validation").startswith("NOT DELIVERED AS GOOD")


def test_perturbed_copies_move_each_value_by_at_most_one_grey_level() -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    assert perturbed(images, 0) is images
    copy = perturbed(images, 1)
    assert copy.dtype == np.uint8 and copy.shape == images.shape
    moved = np.abs(copy.astype(int) - images.astype(int))
    assert moved.max() == 1 and 0.6 < (moved[2:] > 0).mean() < 0.73  # about two values in three move
    assert set(np.unique(copy[0])) == {0, 1} and set(np.unique(copy[1])) == {254, 255}  # clipped
    np.testing.assert_array_equal(copy, perturbed(images, 1))  # the same copy for the same seed
    assert not np.array_equal(copy, perturbed(images, 2))
    assert not np.array_equal(copy, perturbed(images, 1, part=64))  # each chunk its own noise


def test_small_validation_sets_get_more_copies() -> None:
    # about 1,000 images evaluated in all, 2 to 10 copies
    assert [gate_copies(n) for n in (1, 57, 100, 150, 356, 500, 2000)] == [10, 10, 9, 6, 2, 2, 2]
