"""The weight average follows its formula, covers batch-norm statistics, and swaps in and out."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer.ema import WeightAverage


def tiny() -> keras.Model:
    inputs = keras.Input((3,))
    x = keras.layers.Dense(2)(inputs)
    return keras.Model(inputs, keras.layers.BatchNormalization()(x))


def test_average_ramps_up_then_follows_the_decay() -> None:
    network = tiny()
    average = WeightAverage(network, decay=0.9, ramp_steps=10.0)
    assert len(average.average) == len(network.weights) == 6  # kernel, bias, BN gamma/beta/mean/var
    kernel = network.weights[0]
    start = kernel.numpy().copy()
    kernel.assign(start + 1.0)
    average.update(tf.constant(10))
    decay = 0.9 * (1 - np.exp(-1.0))
    # float32 arithmetic on values near 1: an absolute tolerance (a relative one failed on a random
    # kernel element that landed near zero, 0.0045, off by 5e-8)
    np.testing.assert_allclose(average.average[0].numpy(), start + (1 - decay), rtol=0, atol=1e-6)


def test_first_step_takes_the_weights_almost_whole() -> None:
    network = tiny()
    average = WeightAverage(network, decay=0.99, ramp_steps=25.0)
    network.weights[1].assign([5.0, 5.0])
    average.update(tf.constant(0))  # decay 0 at step 0
    np.testing.assert_allclose(average.average[1].numpy(), [5.0, 5.0])


def test_swapped_puts_the_average_in_and_the_raw_weights_back() -> None:
    network = tiny()
    average = WeightAverage(network, decay=0.5)
    raw = [w.numpy().copy() for w in network.weights]
    for avg in average.average:
        avg.assign(avg + 3.0)
    x = np.ones((1, 3), np.float32)
    before = network(x, training=False).numpy()
    with average.swapped():
        np.testing.assert_allclose(network.weights[0].numpy(), raw[0] + 3.0)
        assert not np.allclose(network(x, training=False).numpy(), before)
    for w, r in zip(network.weights, raw, strict=True):
        np.testing.assert_array_equal(w.numpy(), r)


def test_swapped_restores_after_an_error() -> None:
    network = tiny()
    average = WeightAverage(network, decay=0.5)
    average.average[0].assign(average.average[0] + 1.0)
    raw = network.weights[0].numpy().copy()
    with pytest.raises(RuntimeError), average.swapped():
        raise RuntimeError("evaluation failed")
    np.testing.assert_array_equal(network.weights[0].numpy(), raw)
