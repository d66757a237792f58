"""The stem's channels are equalized for int8 without changing what the float network computes."""

from __future__ import annotations

import keras
import numpy as np

from trainer.config import TrainConfig
from trainer.models import build_detector
from trainer.stem import CHAIN, HEADROOM, MAX_GAIN, equalize_stem


def images(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 255, (1, 96, 96, 3)).astype(np.float32) for _ in range(n)]


def test_the_float_network_is_unchanged_and_small_channels_grow() -> None:
    network = build_detector(TrainConfig(labels=("a", "b"), alpha=0.35, input_size=96)).network
    backbone = network.get_layer("backbone")
    keras.utils.set_random_seed(3)
    for bn_name, _, _ in CHAIN:  # some channels tiny beside the others, as in ImageNet's stem
        bn = backbone.get_layer(bn_name)
        gamma, _, mean, variance = bn.get_weights()
        small = np.arange(len(gamma)) % 4 == 0
        bn.set_weights([np.where(small, 0.02, 1.0) * gamma, np.where(small, 0.0, 0.1), mean, variance])
    calibration, others = images(1, 4), images(2, 3)
    before = [np.asarray(t) for image in others for t in network(image, training=False)]
    probe = keras.Model(backbone.input, backbone.get_layer("Conv1_relu").output)
    spread_before = probe(network.get_layer("preprocess")(calibration[0])).numpy().max(axis=(0, 1, 2))

    gains = equalize_stem(network, lambda: iter(calibration))

    assert set(gains) == {bn for bn, _, _ in CHAIN}
    assert all(g.min() >= 1.0 and g.max() <= MAX_GAIN for g in gains.values())
    assert all(g.max() > 2.0 for g in gains.values())  # the tiny channels were scaled up
    after = [np.asarray(t) for image in others for t in network(image, training=False)]
    for a, b in zip(after, before, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    spread_after = probe(network.get_layer("preprocess")(calibration[0])).numpy().max(axis=(0, 1, 2))
    lit = spread_before > 1e-3
    # every lit channel of Conv1's output now reaches near the ReLU6 range, or kept its own
    assert spread_after[lit].min() > spread_before[lit].min() * 2
    assert (
        spread_after.max() <= 6.0
        and spread_after[lit].max() <= max(6.0 / HEADROOM, spread_before.max()) + 1e-4
    )
