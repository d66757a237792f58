"""Draw detections on a frame (Pillow only)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge.detection import Detection

COLOURS = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
]


def annotate(frame: np.ndarray, detections: Sequence[Detection]) -> Image.Image:
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    size = max(12, image.width // 40)
    font = ImageFont.load_default(size=size)
    for d in detections:
        colour = COLOURS[d.class_id % len(COLOURS)]
        draw.rectangle(d.box, outline=colour, width=max(2, image.width // 200))
        text = f"{d.label} {d.score:.2f}"
        x, y = d.box[0], max(0.0, d.box[1] - size - 4)
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=colour)
        draw.text((x, y), text, fill=(0, 0, 0), font=font)
    return image


def jpeg(image: Image.Image, quality: int = 80) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
