"""Frame -> model input -> frame pixels, on known boxes: no model, so the geometry alone is tested."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detector import LETTERBOX_GREY, fit_frame

INPUT = (128, 96)  # width, height: not square, so both axes are checked


def _frame_with_box(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A dark frame with one white rectangle covering pixels xmin..xmax-1, ymin..ymax-1."""
    frame = np.full((height, width, 3), 20, np.uint8)
    x0, y0, x1, y1 = box
    frame[y0:y1, x0:x1] = 255
    return frame


def _found(pixels: np.ndarray) -> tuple[float, float, float, float]:
    """What an ideal detector reports: the white rectangle in the input, (ymin, xmin, ymax, xmax)
    normalised."""
    ys, xs = np.nonzero(pixels[..., 0] > 200)
    h, w = pixels.shape[:2]
    return ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w


@pytest.mark.parametrize("letterbox", [False, True])
@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((640, 360), (400, 60, 560, 300)),  # landscape: letterbox bars above and below
        ((360, 640), (30, 420, 330, 600)),  # portrait: bars left and right
        ((300, 300), (100, 100, 200, 160)),  # square into a non-square input
    ],
)
def test_a_box_seen_in_the_input_maps_back_onto_the_frame(letterbox: bool, size, box) -> None:
    width, height = size
    pixels, geometry = fit_frame(_frame_with_box(width, height, box), *INPUT, letterbox=letterbox)
    assert pixels.shape == (INPUT[1], INPUT[0], 3) and pixels.dtype == np.uint8
    mapped = geometry.to_frame(_found(pixels))
    # one input pixel of slack, as frame pixels (bilinear resizing blurs the edges by that much)
    slack = 1.5 / min(geometry.scale)
    assert mapped == pytest.approx(box, abs=slack), (mapped, box)


@pytest.mark.parametrize(("width", "height"), [(640, 360), (360, 640)])
def test_letterbox_keeps_the_aspect_ratio_on_grey_bars(width: int, height: int) -> None:
    frame = np.full((height, width, 3), 200, np.uint8)
    pixels, geometry = fit_frame(frame, *INPUT, letterbox=True)
    sx, sy = geometry.scale
    assert sx == sy
    px, py = geometry.pad
    assert (px > 0) != (py > 0)  # bars on one axis only
    assert tuple(pixels[0, 0]) == LETTERBOX_GREY  # a corner is always in a bar
    centre = pixels[INPUT[1] // 2, INPUT[0] // 2]
    assert tuple(centre) == (200, 200, 200)


def test_boxes_outside_the_picture_are_clipped_to_the_frame() -> None:
    _, geometry = fit_frame(np.zeros((360, 640, 3), np.uint8), *INPUT, letterbox=True)
    assert geometry.to_frame((-1.0, -1.0, 2.0, 2.0)) == (0.0, 0.0, 640.0, 360.0)
    top_bar = geometry.pad[1] / INPUT[1]
    assert geometry.to_frame((0.0, 0.25, top_bar, 0.75))[1::2] == (0.0, 0.0)  # all in the bar: no height
