"""Draw labelled boxes on images (Pillow only). Also used by the dataset preview in storage/."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge.detection import Detection

PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
]  # fmt: skip


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def draw_labelled_box(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    text: str,
    rgb: tuple[int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    font_size: int,
    line_width: int,
) -> None:
    """A rectangle (xmin, ymin, xmax, ymax) in pixels with `text` on a filled tag above it."""
    draw.rectangle(box, outline=rgb, width=line_width)
    x, y = box[0], max(0.0, box[1] - font_size - 4)
    left, top, right, bottom = draw.textbbox((x, y), text, font=font)
    draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=rgb)
    draw.text((x, y), text, fill=(0, 0, 0), font=font)


def annotate(frame: np.ndarray, detections: Sequence[Detection]) -> Image.Image:
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    size = max(12, image.width // 40)
    font = ImageFont.load_default(size=size)
    for d in detections:
        draw_labelled_box(
            draw,
            d.box,
            f"{d.label} {d.score:.2f}",
            colour(d.class_id),
            font,
            size,
            max(2, image.width // 200),
        )
    return image


def jpeg(image: Image.Image, quality: int = 80) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
