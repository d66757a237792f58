"""The training config refuses what it cannot train (no TensorFlow needed)."""

from __future__ import annotations

import pytest

from trainer.config import TrainConfig


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="yolo")
