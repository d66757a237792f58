"""Quantization-aware training's rounding: off, it changes nothing; on, the int8 model's tensors take
256 values at most; the layers keep their variables and weights files."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from trainer.config import TrainConfig
from trainer.models import build_detector
from trainer.models.fake_quant import FakeQuantization

CONFIG = TrainConfig(labels=("a", "b"), alpha=0.35, input_size=96)


def images(seed: int, n: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, 96, 96, 3)).astype(np.float32)


def relu_probe(network: keras.Model) -> keras.Model:
    """One ReLU6 output in the backbone's middle, from pre-processed images."""
    backbone = network.get_layer("backbone")
    return keras.Model(backbone.input, backbone.get_layer("block_5_expand_relu").output)


def test_off_it_changes_nothing_and_on_the_int8_tensors_take_256_values(tmp_path: Path) -> None:
    plain, quantized = build_detector(CONFIG).network, build_detector(CONFIG).network
    quantized.set_weights(plain.get_weights())
    weights_before = [w.path for w in quantized.weights]
    fake = FakeQuantization(quantized, box_bound=1.5)
    assert [w.path for w in quantized.weights] == weights_before  # no variable of its own
    # every fused convolution's output, the linear bottlenecks, the residual adds, the two heads
    assert sum(name.endswith("_relu") for name in fake.layers) > 30
    assert sum(name.endswith("_project_BN") for name in fake.layers) > 10
    assert sum(name.endswith("_add") for name in fake.layers) > 5
    assert {"box_encodings", "class_logits"} <= set(fake.layers)

    x = images(0)
    for a, b in zip(quantized(x, training=False), plain(x, training=False), strict=True):
        np.testing.assert_array_equal(a, b)

    ranges = fake.calibrate([images(1), images(2)])
    assert all(low <= 0.0 <= high for low, high in ranges.values())
    assert ranges["box_encodings"][0] >= -1.5 and ranges["box_encodings"][1] <= 1.5  # the export's clip
    assert ranges["block_1_expand_relu"][1] <= 6.0
    assert not fake.on  # calibrating measures only
    for a, b in zip(quantized(x, training=False), plain(x, training=False), strict=True):
        np.testing.assert_array_equal(a, b)

    fake.enable()
    boxes, logits = (np.asarray(t) for t in quantized(x, training=True))
    plain_boxes, plain_logits = (np.asarray(t) for t in plain(x, training=True))
    assert len(np.unique(boxes)) <= 256 < len(np.unique(plain_boxes))
    assert len(np.unique(logits)) <= 256 < len(np.unique(plain_logits))
    assert boxes.min() >= -1.5 - 1e-6 and boxes.max() <= 1.5 + 1e-6
    low, high = ranges["class_logits"]
    gaps = np.diff(np.unique(logits)) / ((high - low) / 255)  # on the int8 grid of that range
    np.testing.assert_allclose(gaps, np.round(gaps), atol=1e-2)
    relu = np.asarray(relu_probe(quantized)(keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)))
    assert len(np.unique(relu)) <= 256

    fake.enable(False)
    plain.set_weights(quantized.get_weights())  # the training passes moved the BatchNorm statistics
    for a, b in zip(quantized(x, training=False), plain(x, training=False), strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradients_pass_straight_through_the_rounding() -> None:
    network = build_detector(CONFIG).network
    fake = FakeQuantization(network)
    fake.calibrate([images(3)])
    fake.enable()
    x = tf.constant(images(4, 2))

    @tf.function
    def grads():
        with tf.GradientTape() as tape:
            boxes, logits = network(x, training=True)
            loss = tf.reduce_mean(boxes**2) + tf.reduce_mean(logits)
        return tape.gradient(loss, network.trainable_variables)

    found = grads()
    assert all(g is not None for g in found)
    assert sum(float(tf.reduce_sum(tf.abs(g))) > 0 for g in found) > len(found) // 2


def test_weights_files_are_the_plain_networks(tmp_path: Path) -> None:
    quantized, plain = build_detector(CONFIG).network, build_detector(CONFIG).network
    FakeQuantization(quantized)
    keras.utils.set_random_seed(5)
    for weight in quantized.weights:
        weight.assign(tf.random.uniform(weight.shape, 0.5, 1.5))
    path = tmp_path / "q.weights.h5"
    quantized.save_weights(str(path))
    plain.load_weights(str(path))
    x = images(6, 1)
    for a, b in zip(plain(x, training=False), quantized(x, training=False), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
