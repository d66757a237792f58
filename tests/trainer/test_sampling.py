"""Repeat factor sampling: images of rare labels come more often, the others as before."""

from __future__ import annotations

import numpy as np

from trainer.data import Sample, _epoch_order, repeat_factors


def _sample(*classes: int) -> Sample:
    boxes = np.tile(np.array([[0.1, 0.1, 0.5, 0.5]], np.float32), (len(classes), 1))
    return Sample(key="k", load=lambda: b"", boxes=boxes, classes=np.array(classes, np.int32))


def test_an_image_takes_the_largest_factor_of_its_labels() -> None:
    # label 1 in 90 of 100 images, label 2 in 10, label 3 in 1; one image has none
    samples = [_sample(1)] * 89 + [_sample(1, 2)] + [_sample(2)] * 8 + [_sample(2, 3, 3)] + [_sample()]
    factors = repeat_factors(samples, threshold=0.4)
    assert factors[0] == 1.0  # common: sqrt(0.4 / 0.9) < 1
    assert factors[-1] == 1.0  # an image with no objects is kept once
    np.testing.assert_allclose(factors[89], np.sqrt(0.4 / 0.1))  # label 2 outranks label 1
    np.testing.assert_allclose(factors[98], np.sqrt(0.4 / 0.01))  # label 3, counted once per image


def test_an_epoch_repeats_each_image_by_its_factor_on_average() -> None:
    factors = np.array([1.0, 2.0, 2.5, 6.3])
    order = _epoch_order(factors, seed=3, epochs=2000)
    seen = np.bincount(order, minlength=4) / 2000
    np.testing.assert_allclose(seen, factors, rtol=0.03)
    again = _epoch_order(factors, seed=3, epochs=2000)
    np.testing.assert_array_equal(order, again)  # the seed fixes the order
