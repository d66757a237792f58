"""Detection models: SSD MobileNet v2 (SSDLite heads) and a light FPN variant."""

from __future__ import annotations

from trainer.config import TrainConfig
from trainer.models.detector import Detector


def build_detector(config: TrainConfig) -> Detector:
    """The model named by `config.model`, with its anchors."""
    if config.model == "ssd_mobilenet_v2_320":
        from trainer.models.ssd_mobilenet_v2 import build_ssd_mobilenet_v2

        return build_ssd_mobilenet_v2(config)
    if config.model == "ssd_mobilenet_v2_s8_320":
        from trainer.models.ssd_mobilenet_v2 import build_ssd_mobilenet_v2_s8

        return build_ssd_mobilenet_v2_s8(config)
    if config.model == "ssd_mobilenet_v2_s8td_320":
        from trainer.models.ssd_mobilenet_v2 import build_ssd_mobilenet_v2_s8td

        return build_ssd_mobilenet_v2_s8td(config)
    if config.model == "ssd_mobilenet_v2_fpnlite_320":
        from trainer.models.fpnlite import build_fpnlite

        return build_fpnlite(config)
    if config.model == "ssd_mobilenet_v2_fpnlite_p3p6_320":
        from trainer.models.fpnlite import build_fpnlite_p3p6

        return build_fpnlite_p3p6(config)
    raise ValueError(f"unknown model {config.model!r}")
