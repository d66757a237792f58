"""SSD anchors, as (ycenter, xcenter, height, width) normalised to [0, 1].

This is the layout the TFLite detection post-process op expects for its anchors input.
Anchors are ordered level by level, cells row-major, the anchors of one cell innermost: the
same order in which the heads' outputs are reshaped and concatenated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _grid(grid: int, hw: Sequence[tuple[float, float]]) -> list[tuple[float, float, float, float]]:
    centers = (np.arange(grid, dtype=np.float32) + 0.5) / grid
    cy, cx = np.meshgrid(centers, centers, indexing="ij")
    return [(y, x, h, w) for y, x in zip(cy.ravel(), cx.ravel(), strict=True) for h, w in hw]


def ssd_anchors(grids: Sequence[int], min_scale: float = 0.2, max_scale: float = 0.95) -> np.ndarray:
    """The SSD MobileNet v2 recipe: [N, 4] float32.

    Scales grow linearly from min to max over the levels. The first level has 3 anchors a cell
    (scale 0.1 square, scale min at 2:1 and 1:2); the others have ratios 1, 2, 1/2, 3, 1/3 plus a
    square of scale sqrt(s_k * s_k+1).
    """
    n = len(grids)
    scales = [min_scale + (max_scale - min_scale) * i / max(n - 1, 1) for i in range(n)] + [1.0]
    out: list[tuple[float, float, float, float]] = []
    for level, grid in enumerate(grids):
        s = scales[level]
        if level == 0:
            pairs = [(0.1, 1.0), (s, 2.0), (s, 0.5)]
        else:
            pairs = [(s, ar) for ar in (1.0, 2.0, 0.5, 3.0, 1 / 3)]
        hw = [(sc / math.sqrt(ar), sc * math.sqrt(ar)) for sc, ar in pairs]
        if level > 0:
            extra = math.sqrt(s * scales[level + 1])
            hw.append((extra, extra))
        out.extend(_grid(grid, hw))
    return np.asarray(out, dtype=np.float32)


def ssd_anchors_per_cell(num_levels: int) -> list[int]:
    return [3] + [6] * (num_levels - 1)


# The stride-8 level of ssd_mobilenet_v2_s8_320 as (scale, aspect width / height). On a 320 input:
# a 13 px square, 13 x 27 and 27 x 13 px rectangles (a far ball or buoy standing or lying), and a
# 14 x 109 px post. Fitted to robosub_transdec's objects (python -m bench.anchors): with them in
# front of the SSD levels 33% of its objects have no anchor at IoU >= 0.5, against 71% without.
SMALL_OBJECT_SHAPES = ((0.04, 1.0), (0.06, 0.5), (0.06, 2.0), (0.12, 1 / 8))


def small_object_anchors(grids: Sequence[int]) -> np.ndarray:
    """A stride-8 level of SMALL_OBJECT_SHAPES on `grids[0]`, then ssd_anchors on the rest: [N, 4]."""
    hw = [(s / math.sqrt(ar), s * math.sqrt(ar)) for s, ar in SMALL_OBJECT_SHAPES]
    small = np.asarray(_grid(grids[0], hw), dtype=np.float32).reshape(-1, 4)
    return np.concatenate([small, ssd_anchors(grids[1:])])


def fpn_anchors(
    grids: Sequence[int],
    anchor_scale: float = 4.0,
    scales_per_octave: int = 2,
    aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5),
) -> np.ndarray:
    """FPN (RetinaNet-style) anchors: base size anchor_scale * stride, 2 octave scales x 3 ratios."""
    out: list[tuple[float, float, float, float]] = []
    for grid in grids:
        base = anchor_scale / grid  # anchor_scale strides, normalised (stride = input_size / grid)
        hw: list[tuple[float, float]] = []
        for octave in range(scales_per_octave):
            size = base * 2 ** (octave / scales_per_octave)
            hw.extend((size / math.sqrt(ar), size * math.sqrt(ar)) for ar in aspect_ratios)
        out.extend(_grid(grid, hw))
    return np.asarray(out, dtype=np.float32)


def fpn_anchors_per_cell(scales_per_octave: int = 2, ratios: int = 3) -> int:
    return scales_per_octave * ratios


def prior_anchors(grids: Sequence[int], strides: float = 4.0) -> np.ndarray:
    """One square prior per cell, `strides` cells wide (anchor-free detectors' single prior, as ATSS
    and FCOS use it): on a 320 input, 32 px at stride 8 up to 256 px at stride 64. The network
    regresses boxes from it through the same centre-size coder the TFLite op decodes with."""
    out: list[tuple[float, float, float, float]] = []
    for grid in grids:
        size = strides / grid
        out.extend(_grid(grid, [(size, size)]))
    return np.asarray(out, dtype=np.float32)
