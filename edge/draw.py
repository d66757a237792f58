"""Boxes drawn on pictures, in one colour per label: frames on the robot, dataset previews, reports.

Pillow only, so the edge install stays small; the dataset preview (bot, CLI) and the trainer's
prediction sheets import it from here, so a label has the same colour everywhere.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFile, ImageFont

from edge.detection import Detection

# Real datasets hold truncated JPEGs (the reader warns about them); show what decodes.
ImageFile.LOAD_TRUNCATED_IMAGES = True

Box = tuple[str, float, float, float, float]  # label text, xmin, ymin, xmax, ymax in pixels

PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
]  # fmt: skip
UNKNOWN_LABEL = (255, 255, 255)


def colour(index: int) -> tuple[int, int, int]:
    """The colour of class `index` (0-based), the same in previews, reports and on the robot."""
    return PALETTE[index % len(PALETTE)]


def label_colour(labels: Sequence[str], label: str) -> tuple[int, int, int]:
    try:
        return colour(list(labels).index(label))
    except ValueError:
        return UNKNOWN_LABEL


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


def draw_boxes(
    img: Image.Image,
    boxes: Sequence[Box],
    labels: Sequence[str],
    scale: float = 1.0,
) -> None:
    """Draw (label, xmin, ymin, xmax, ymax) boxes in place; coordinates are multiplied by `scale`.

    The colour follows the first word of the label text ("ball 0.93" is coloured as "ball").
    """
    draw = ImageDraw.Draw(img)
    font_size = max(11, img.width // 28)
    font = ImageFont.load_default(size=font_size)
    for text, x0, y0, x1, y1 in boxes:
        box = (x0 * scale, y0 * scale, x1 * scale, y1 * scale)
        draw_labelled_box(
            draw,
            box,
            text,
            label_colour(labels, text.split(" ")[0]),
            font,
            font_size,
            max(2, img.width // 160),
        )


def contact_sheet(
    images: Sequence[tuple[bytes, Sequence[Box]]], labels: Sequence[str], columns: int = 4, thumb: int = 256
) -> bytes:
    """PNG bytes of a grid of thumbnails (encoded images) with their (label, x0, y0, x1, y1) boxes drawn."""
    if not images:
        raise ValueError("no images to preview")
    columns = min(columns, len(images))
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), (32, 32, 32))
    for i, (data, boxes) in enumerate(images):
        with Image.open(io.BytesIO(data)) as src:
            img = src.convert("RGB")
        scale = thumb / max(img.width, img.height)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        draw_boxes(img, boxes, labels, scale)
        x, y = (i % columns) * thumb, (i // columns) * thumb
        sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=True)
    return out.getvalue()


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
