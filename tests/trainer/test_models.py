"""Building a detector refuses weights it cannot load, naming what to use instead (no training)."""

from __future__ import annotations

import pytest

from trainer.config import TrainConfig
from trainer.models import build_detector
from trainer.models.backbone import WeightsUnavailable


def test_bad_weights_are_refused_with_alternatives(tmp_path) -> None:
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        build_detector(
            TrainConfig(labels=("a",), input_size=96, alpha=0.35, weights=str(tmp_path / "nope.h5"))
        )
    with pytest.raises(WeightsUnavailable, match="--weights none"):
        build_detector(TrainConfig(labels=("a",), input_size=96, alpha=0.35, weights="imagenet"))
