"""Detections as plain objects."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object.

    `box` is (xmin, ymin, xmax, ymax) in pixels of the original frame; `box_norm` the same
    normalised to [0, 1] by the frame's width and height.
    """

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]
    box_norm: tuple[float, float, float, float]

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["score"] = round(self.score, 4)
        d["box"] = [round(v, 1) for v in self.box]
        d["box_norm"] = [round(v, 4) for v in self.box_norm]
        return d
