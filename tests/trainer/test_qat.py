"""Quantization-aware training rounds as the int8 model does, only where asked, and saves as before."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import qat
from trainer.events import Step
from trainer.train import Trainer


def test_kernels_round_per_output_channel_to_the_symmetric_int8_grid() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 4, 5)) * np.array([0.01, 0.1, 1.0, 10.0, 3.0])
    rounded = qat.round_kernel(tf.constant(kernel, tf.float32)).numpy()
    for c in range(5):
        bound = np.abs(kernel[..., c]).max()
        levels = rounded[..., c] / bound * 127
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)  # on the grid
        assert np.abs(levels).max() <= 127 + 1e-3
        assert np.abs(rounded[..., c] - kernel[..., c]).max() <= bound / 127 / 2 * 1.001  # nearest point

    depthwise = rng.normal(size=(3, 3, 6, 1)) * np.arange(1, 7)[None, None, :, None]
    rounded = qat.round_kernel(tf.constant(depthwise, tf.float32), depthwise=True).numpy()
    assert rounded.shape == depthwise.shape
    for c in range(6):
        step = np.abs(depthwise[:, :, c]).max() / 127  # each channel its own scale
        levels = rounded[:, :, c] / step
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)


def test_activations_round_to_256_levels_that_hold_zero_and_pass_gradients_through() -> None:
    x = tf.constant(np.random.default_rng(1).uniform(-1.0, 3.0, size=(4, 8, 8, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = qat.round_activation(x)
        total = tf.reduce_sum(y)
    values = np.unique(y.numpy())
    assert 200 < len(values) <= 256
    assert np.abs(y.numpy() - x.numpy()).max() <= 4.0 / 255 / 2 * 1.01
    assert float(qat.round_activation(tf.constant([0.0, 0.3, 6.0]))[0]) == 0.0  # zero is exact
    # straight through, but for values beyond the range once it is nudged to put zero on the grid
    # (the batch's extremes: the converter clips them the same way)
    gradient = tape.gradient(total, x).numpy()
    assert set(np.unique(gradient)) <= {0.0, 1.0} and (gradient == 0).sum() <= 4


def test_a_running_range_keeps_the_widest_any_batch_had() -> None:
    running = qat.RunningRange()
    wide = tf.constant([-2.0, 0.0, 5.0])
    qat.round_activation(wide, running)
    narrow = tf.constant([-0.5, 0.01, 1.0])
    rounded = qat.round_activation(narrow, running).numpy()
    assert (float(running.low), float(running.high)) == (-2.0, 5.0)  # the narrow batch kept them
    step = 7.0 / 255
    assert abs(rounded[1]) < 1e-6  # 0.01 is nearer 0 than the wide range's next level, 0.027
    np.testing.assert_allclose(rounded / step, np.round(rounded / step), atol=1e-3)
    assert not np.allclose(rounded, qat.round_activation(narrow).numpy())  # its own range is finer


def _block() -> keras.Model:
    """An inverted residual block as MobileNetV2 has them: expand, depthwise, project, add."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 1, use_bias=False, name="expand")(inputs)
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization(name="expand_bn")(x))
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization(name="depthwise_bn")(x))
    x = keras.layers.Conv2D(4, 1, use_bias=False)(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    return keras.Model(inputs, keras.layers.Add()([inputs, x]))


def test_a_quant_aware_network_rounds_only_while_simulating_and_saves_as_before(tmp_path: Path) -> None:
    model = _block()
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 8, 4)), tf.float32)
    before = model(x).numpy()
    weights = [w.path for w in model.weights]
    assert qat.make_quant_aware(model) == 9  # 2 convs, 1 depthwise, 3 BatchNorms, 2 ReLUs, 1 Add
    rounds = {layer.name: layer.round_output for layer in model.layers if hasattr(layer, "round_output")}
    assert rounds == {"expand_bn": False, "depthwise_bn": False, "project_bn": True}  # no ReLU follows
    ranged = sorted(type(layer).__name__ for layer in model.layers if getattr(layer, "running", None))
    assert ranged == ["Add", "BatchNormalization", "ReLU", "ReLU"]  # the outputs that round
    assert [w.path for w in model.weights] == weights  # the ranges are no weights of the network

    np.testing.assert_array_equal(model(x).numpy(), before)
    with qat.simulating():
        rounded = model(x).numpy()
    assert 0 < np.abs(rounded - before).max() < 0.1 * np.abs(before).max()
    add = model.layers[-1]  # its range is the sum's, of inputs that were rounded themselves
    assert float(add.running.low) == pytest.approx(min(before.min(), 0.0), rel=0.01)
    assert float(add.running.high) == pytest.approx(before.max(), rel=0.01)
    np.testing.assert_array_equal(model(x).numpy(), before)  # off again after the block

    model.save_weights(str(tmp_path / "w.weights.h5"))  # loads into the plain network, and back
    plain = _block()
    plain.load_weights(str(tmp_path / "w.weights.h5"))
    np.testing.assert_array_equal(plain(x).numpy(), before)


@pytest.mark.slow
def test_training_starts_rounding_at_quant_aware_from(trained_model, tmp_path: Path) -> None:
    cfg = trained_model.config.with_(steps=4, quant_aware_from=0.5, learning_rate=1e-5)
    events: list = []
    weights = trained_model.result.checkpoint / "model.weights.h5"
    trainer = Trainer(cfg, trained_model.data, tmp_path / "w", on_event=events.append, init_weights=weights)
    result = trainer.run()
    assert result.steps_completed == 4
    assert trainer.simulating_int8  # steps 3 and 4 ran in a second step, traced with the rounding
    assert trainer.train_step.experimental_get_tracing_count() == 1
    losses = [e.loss["total"] for e in events if isinstance(e, Step)]
    assert len(losses) == 4 and all(np.isfinite(losses)) and max(losses) < 1.0  # rounded, still trained
    network = trainer.detector.network
    assert any(isinstance(layer, qat.Conv2D) for layer in network._flatten_layers(recursive=True))
