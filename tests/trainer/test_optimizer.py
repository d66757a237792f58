"""The optimizer a config asks for: a slower pretrained backbone, and AdamW's decoupled decay."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer.config import TrainConfig
from trainer.train import FusedAdam, ScaledAdam, make_optimizer


def _network() -> keras.Model:
    inputs = keras.Input((3,))
    backbone = keras.Sequential([keras.layers.Dense(4, name="early")], name="backbone")
    outputs = keras.layers.Dense(2, name="head")(backbone(inputs))
    return keras.Model(inputs, outputs)


def _one_step(config: TrainConfig) -> dict[str, np.ndarray]:
    """How far one step with a gradient of ones moves each variable, at a rate of 0.01."""
    network = _network()
    optimizer = make_optimizer(config, network)
    optimizer.learning_rate = 0.01
    before = {v.path: v.numpy().copy() for v in network.trainable_variables}
    grads = [np.ones(v.shape, np.float32) for v in network.trainable_variables]
    optimizer.apply_gradients(zip(grads, network.trainable_variables, strict=True))
    return {v.path: before[v.path] - v.numpy() for v in network.trainable_variables}


def test_the_default_is_plain_adam() -> None:
    optimizer = make_optimizer(TrainConfig(), _network())
    assert type(optimizer) is FusedAdam and optimizer.weight_decay is None


@pytest.mark.parametrize("traced", [False, True])
def test_the_fused_update_is_keras_adam(traced: bool) -> None:
    """Four steps of changing gradients and rates (some clipped): the same weights as Keras' Adam."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=shape).astype(np.float32) for shape in [(3, 4), (5,), (2, 2, 3)]]
    grads = [[rng.normal(size=x.shape).astype(np.float32) * 5 * (i + 1) for x in start] for i in range(4)]

    def train(optimizer: keras.optimizers.Optimizer) -> list[np.ndarray]:
        variables = [keras.Variable(x) for x in start]
        optimizer.build(variables)

        def step(g: list[tf.Tensor]) -> None:
            optimizer.apply_gradients(zip(g, variables, strict=True))

        run = tf.function(step) if traced else step
        for i, g in enumerate(grads):
            optimizer.learning_rate.assign(0.01 * (i + 1))
            run([tf.constant(x) for x in g])
        return [v.numpy() for v in variables]

    settings = dict(learning_rate=0.0, beta_2=0.99, clipnorm=10.0)
    fused, keras_adam = train(FusedAdam(**settings)), train(keras.optimizers.Adam(**settings))
    for a, b, s in zip(fused, keras_adam, start, strict=True):
        assert np.abs(b - s).max() > 0.05  # they moved
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("changes", [{}, {"optimizer": "adamw"}, {"backbone_rate": 0.5}])
def test_every_optimizer_takes_the_configs_second_moment_decay(changes) -> None:
    assert make_optimizer(TrainConfig(**changes), _network()).beta_2 == 0.999
    assert make_optimizer(TrainConfig(beta_2=0.99, **changes), _network()).beta_2 == 0.99
    with pytest.raises(ValueError, match="beta_2"):
        TrainConfig(beta_2=1.0)


def test_the_backbone_moves_at_its_share_of_the_rate() -> None:
    moved = _one_step(TrainConfig(backbone_rate=0.25))
    # Adam's first step moves every weight by the rate (times the gradient's sign)
    for path, delta in moved.items():
        rate = 0.0025 if "early/" in path else 0.01
        np.testing.assert_allclose(delta, rate, rtol=1e-3, err_msg=path)


def test_adamw_decays_kernels_but_not_biases() -> None:
    network = _network()
    for v in network.trainable_variables:
        v.assign(np.full(v.shape, 2.0, np.float32))
    optimizer = make_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.5), network)
    assert isinstance(optimizer, ScaledAdam)
    optimizer.learning_rate = 0.01
    zeros = [np.zeros(v.shape, np.float32) for v in network.trainable_variables]
    optimizer.apply_gradients(zip(zeros, network.trainable_variables, strict=True))
    for v in network.trainable_variables:
        expected = 2.0 if v.path.endswith("bias") else 2.0 * (1 - 0.5 * 0.01)
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, err_msg=v.path)


def test_bad_optimizer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="adamw"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="backbone_rate"):
        TrainConfig(backbone_rate=0.0)
