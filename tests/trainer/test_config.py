"""The training config refuses what it cannot train (no TensorFlow needed)."""

from __future__ import annotations

import pytest

from trainer.config import TrainConfig


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="yolo")


@pytest.mark.parametrize(
    ("weights", "scratch"),
    [("none", True), ("", True), ("imagenet", False), ("/data/mobilenet_v2.weights.h5", False)],
)
def test_from_scratch_means_no_pretrained_backbone(weights: str, scratch: bool) -> None:
    assert TrainConfig(weights=weights).from_scratch is scratch
