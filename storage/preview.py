"""A preview image: a PNG contact sheet of a few images with their boxes and labels drawn."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFile, ImageFont

from edge.draw import colour, draw_labelled_box
from storage.domain import ImageRecord

# Real datasets hold truncated JPEGs (the reader warns about them); show what decodes.
ImageFile.LOAD_TRUNCATED_IMAGES = True


def label_colour(labels: Sequence[str], label: str) -> tuple[int, int, int]:
    try:
        return colour(list(labels).index(label))
    except ValueError:
        return (255, 255, 255)


def draw_boxes(
    img: Image.Image,
    boxes: Sequence[tuple[str, float, float, float, float]],
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
