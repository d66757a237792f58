"""Training hyperparameters: one dataclass, saved as JSON next to every checkpoint and export."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from storage.plan import CHECKPOINT_EVERY, DEFAULT_MODEL, MODELS, effective_batch_size, epochs_for

__all__ = [
    "CHECKPOINT_EVERY",
    "DEFAULT_MODEL",
    "MODELS",
    "NO_WEIGHTS",
    "TrainConfig",
    "effective_batch_size",
    "epochs_for",
]

NO_WEIGHTS = frozenset({"none", ""})  # `weights` values that mean: train the backbone from scratch


@dataclass(frozen=True)
class TrainConfig:
    model: str = DEFAULT_MODEL
    input_size: int = 320
    alpha: float = 1.0  # MobileNetV2 width multiplier (tests use 0.35)
    weights: str = "none"  # "imagenet", "none", or a path to a Keras weights file
    labels: tuple[str, ...] = ()
    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 0.002  # peak, after warm-up (Adam)
    warmup_steps: int = 100
    bn_momentum: float = 0.9  # Keras' MobileNetV2 default 0.999 is far too slow for short runs
    checkpoint_every: int = CHECKPOINT_EVERY
    max_seconds: float | None = None
    early_stopping_patience: int | None = None  # evaluations without mAP gain; off by default
    seed: int = 0
    # Same data order and bit-identical float results on the same machine, for tests and for comparing
    # runs; slower (TensorFlow picks deterministic kernels, tf.data keeps its order). Process-wide.
    deterministic: bool = False
    augment: bool = True
    # Progress (0..1, by steps or time, as the schedule counts it) from which the images are no longer
    # augmented: the last part of a run sees them as they are (YOLOv8's close_mosaic does the same).
    augment_until: float = 1.0
    # Progress (0..1) from which the training step rounds weights and activations as the int8 model
    # will (trainer/qat.py), so the last part of a run learns to live with it; 1 never does. From
    # 0.8, no robosub int8 model of four seeds was more than 0.005 below float on either metric
    # (without it seed 2's was 0.010 below on mAP@0.5:0.95), for about 6% fewer steps (README).
    quant_aware_from: float = 0.8
    head_channels: int = 0  # extra-feature channels; 0 = model default
    # With pretrained weights, backbone layers before this one stay frozen (stem and blocks 0-3, the
    # high-resolution layers that cost the most to train and change least). "" trains everything.
    freeze_until: str = "block_4_expand"
    score_threshold: float = 0.3  # for precision/recall and the deployed preview
    # Evaluate, choose and deliver a moving average of the weights (trainer/ema.py); 0 turns it off.
    ema_decay: float = 0.98
    # The loss (trainer/loss.py): "focal" or "quality" classes; "giou" or "ciou" boxes; term weights.
    class_loss: str = "focal"
    iou_loss: str = "giou"
    iou_weight: float = 1.0
    huber_weight: float = 1.0
    # Which anchors learn which object (trainer/box_coder.py): "iou" (SSD's thresholds) or "atss".
    assigner: str = "iou"
    # Images of labels found in fewer than this fraction of the training images are repeated
    # (trainer/data.py::repeat_factors; LVIS uses 0.001 over 1,000+ labels); 0 turns it off. 0.2 on
    # robosub (20 min, two seeds, README): int8 mAP@0.5:0.95 0.431 -> 0.459, mAP@0.5 0.726 -> 0.769.
    repeat_threshold: float = 0.2
    # "adam", or "adamw" (decoupled weight decay `weight_decay`, not on BatchNorm or biases, on top of
    # the layers' own L2 term); backbone_rate scales the learning rate of the MobileNetV2 backbone's
    # layers, pretrained or not (either optimizer).
    optimizer: str = "adam"
    # Adam's second-moment decay: 0.999 remembers a gradient for about 1,000 steps, longer than a
    # short run; a lower value forgets the large gradients of a random start sooner.
    beta_2: float = 0.999
    weight_decay: float = 0.01
    backbone_rate: float = 1.0
    # From scratch only: every residual block of the backbone starts as the identity (the BatchNorm
    # after its last convolution starts at zero, Goyal et al. 2017), so the random network starts
    # shallow. The demo's model reached mAP@0.5 0.994-0.997 in 3 minutes at five seeds of five with
    # it, against 0.715-0.999 without (README).
    zero_init_residual: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if self.class_loss not in ("focal", "quality") or self.iou_loss not in ("giou", "ciou"):
            raise ValueError("class_loss is 'focal' or 'quality'; iou_loss is 'giou' or 'ciou'")
        if not 0.0 <= self.augment_until <= 1.0:
            raise ValueError("augment_until is a fraction of the run, 0 to 1")
        if not 0.0 <= self.quant_aware_from <= 1.0:
            raise ValueError("quant_aware_from is a fraction of the run, 0 to 1")
        if self.assigner not in ("iou", "atss"):
            raise ValueError("assigner is 'iou' or 'atss'")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError("optimizer is 'adam' or 'adamw'")
        if not 0.0 < self.backbone_rate <= 1.0 or self.weight_decay < 0.0 or self.repeat_threshold < 0.0:
            raise ValueError("backbone_rate is in (0, 1]; weight_decay and repeat_threshold are not negative")
        if not 0.0 < self.beta_2 < 1.0:
            raise ValueError("beta_2 is in (0, 1)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay is in [0, 1): 0 turns the weight average off")

    def loss_options(self) -> dict[str, Any]:
        """The keyword arguments of trainer.loss.detection_loss that this config sets."""
        return {
            "classes": self.class_loss,
            "iou": self.iou_loss,
            "iou_weight": self.iou_weight,
            "huber_weight": self.huber_weight,
        }

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def from_scratch(self) -> bool:
        """No pretrained backbone: every layer starts random and trains."""
        return self.weights in NO_WEIGHTS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: Path) -> None:
        from storage.blobs import atomic_write

        atomic_write(Path(path), self.to_json().encode())

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "labels" in values:
            values["labels"] = tuple(values["labels"])
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def with_(self, **changes: object) -> TrainConfig:
        return replace(self, **changes)  # type: ignore[arg-type]
