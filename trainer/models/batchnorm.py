"""BatchNorm's training pass as TensorFlow's fused kernel.

Keras 3's BatchNormalization trains with separate ops: the batch's moments, then normalise, then
the gradient of each (Mul, Tile, SquaredDifference, Sum, Mean ...). In a training step of
`ssd_mobilenet_v2_320` (batch 32, 320 px, two CPU cores; TensorFlow's profiler) those ops took about
2.9 s of op time, as much as every convolution and its gradients together (3.2 s). `BatchNormalization`
here computes the same thing with FusedBatchNormV3 and its gradient kernel (1.3 s): the same variables,
the same arithmetic (the moving variance takes the batch's biased variance, as Keras' does), the
same outputs to float rounding. The step: 3.18 -> 2.92 s, side by side in one process. Inference
(`training=False`, frozen layers, the export) is Keras' own code, unchanged.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="fieldlens")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training pass on NHWC float tensors is one fused op.

    It keeps Keras' class name on purpose: a Keras weights file keys each layer's variables by its
    class name, so checkpoints written before this class existed, and by plain Keras, load into it
    and the other way round.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)  # as Keras: the statistics in float32 whatever the policy
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=tf.cast(self.gamma, tf.float32),
            offset=tf.cast(self.beta, tf.float32),
            mean=tf.zeros_like(self.moving_mean),  # unused while training
            variance=tf.zeros_like(self.moving_variance),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel returns the unbiased variance (n - 1); Keras' moving average uses the biased one.
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        variance = variance * tf.maximum(n - 1.0, 0.0) / n
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + tf.stop_gradient(mean) * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + tf.stop_gradient(variance) * (1.0 - momentum)
        )
        return tf.cast(y, self.compute_dtype)

    def _fusable(self, inputs, mask) -> bool:
        return (
            mask is None
            and not self.renorm
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.moving_mean.dtype == tf.float32
        )


def fuse_batch_norms(model: keras.Model) -> int:
    """Make every Keras BatchNormalization of `model` (nested models included) the fused one above,
    in place: its variables, weights and name stay. Returns how many layers changed."""
    n = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer) is keras.layers.BatchNormalization:
            layer.__class__ = BatchNormalization
            n += 1
    return n
