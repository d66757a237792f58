"""A preview image: a PNG contact sheet of a few images with their boxes and labels drawn."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFile, ImageFont

from storage.domain import ImageRecord

# Real datasets hold truncated JPEGs (the reader warns about them); show what decodes.
ImageFile.LOAD_TRUNCATED_IMAGES = True

PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
]


def label_colour(labels: Sequence[str], label: str) -> tuple[int, int, int]:
    try:
        return PALETTE[list(labels).index(label) % len(PALETTE)]
    except ValueError:
        return (255, 255, 255)


def draw_boxes(
    img: Image.Image,
    boxes: Sequence[tuple[str, float, float, float, float]],
    labels: Sequence[str],
    scale: float = 1.0,
) -> None:
    """Draw (label, xmin, ymin, xmax, ymax) boxes in place; coordinates are multiplied by `scale`."""
    draw = ImageDraw.Draw(img)
    font_size = max(11, img.width // 28)
    font = ImageFont.load_default(size=font_size)
    for label, x0, y0, x1, y1 in boxes:
        colour = label_colour(labels, label.split(" ")[0])
        xy = (x0 * scale, y0 * scale, x1 * scale, y1 * scale)
        draw.rectangle(xy, outline=colour, width=max(2, img.width // 160))
        tx, ty = xy[0], max(0.0, xy[1] - font_size - 4)
        bbox = draw.textbbox((tx, ty), label, font=font)
        draw.rectangle((bbox[0] - 2, bbox[1] - 2, bbox[2] + 2, bbox[3] + 2), fill=colour)
        draw.text((tx, ty), label, fill=(0, 0, 0), font=font)


def contact_sheet(
    images: Sequence[tuple[bytes, ImageRecord]], labels: Sequence[str], columns: int = 4, thumb: int = 256
) -> bytes:
    """PNG bytes of a grid of thumbnails with boxes drawn."""
    if not images:
        raise ValueError("no images to preview")
    columns = min(columns, len(images))
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), (32, 32, 32))
    for i, (data, rec) in enumerate(images):
        with Image.open(io.BytesIO(data)) as src:
            img = src.convert("RGB")
        scale = thumb / max(img.width, img.height)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        draw_boxes(img, [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in rec.boxes], labels, scale)
        x, y = (i % columns) * thumb, (i // columns) * thumb
        sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=True)
    return out.getvalue()
