"""Synthetic Pascal VOC datasets: coloured shapes on varied backgrounds.

Nothing can be downloaded here, so tests and the demo make their own data. The shapes are easy
to learn (a tiny model finds them in a few hundred steps), yet boxes, sizes, backgrounds and
negatives vary like in a real dataset.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw

DEFAULT_LABELS = ("circle", "square", "triangle")
_COLOURS = {"circle": (220, 40, 40), "square": (40, 80, 220), "triangle": (40, 180, 60)}
_SIZES = ((320, 240), (256, 256), (400, 300), (240, 320))


def _background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    a = [rng.randint(90, 230) for _ in range(3)]
    b = [rng.randint(90, 230) for _ in range(3)]
    grad = Image.linear_gradient("L").resize((w, h))
    if rng.random() < 0.5:
        grad = grad.transpose(Image.Transpose.ROTATE_90).resize((w, h))
    img = Image.composite(Image.new("RGB", size, tuple(a)), Image.new("RGB", size, tuple(b)), grad)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(0, 6)):  # clutter: grey lines like field tape
        g = rng.randint(60, 200)
        draw.line(
            [(rng.randint(0, w), rng.randint(0, h)), (rng.randint(0, w), rng.randint(0, h))],
            fill=(g, g, g),
            width=rng.randint(1, 4),
        )
    return img


def _draw_shape(
    draw: ImageDraw.ImageDraw, label: str, box: tuple[int, int, int, int], rng: random.Random
) -> None:
    base = _COLOURS.get(label) or tuple(rng.randint(0, 255) for _ in range(3))
    colour = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in base)
    x0, y0, x1, y1 = box
    if label == "circle":
        draw.ellipse(box, fill=colour)
    elif label == "triangle":
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=colour)
    else:
        draw.rectangle(box, fill=colour)


def _overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def make_image(rng: random.Random, labels: tuple[str, ...], negative: bool) -> tuple[Image.Image, list]:
    size = rng.choice(_SIZES)
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    objects: list[tuple[str, tuple[int, int, int, int]]] = []
    for _ in range(0 if negative else rng.randint(1, 3)):
        side = int(min(size) * rng.uniform(0.18, 0.4))
        for _try in range(20):
            x0, y0 = rng.randint(0, size[0] - side), rng.randint(0, size[1] - side)
            aspect = rng.uniform(0.8, 1.25)
            box = (x0, y0, min(size[0], x0 + int(side * aspect)), y0 + side)
            if not any(_overlaps(box, o[1]) for o in objects):
                label = rng.choice(labels)
                _draw_shape(draw, label, box, rng)
                objects.append((label, box))
                break
    return img, objects


def annotation_xml(filename: str, size: tuple[int, int], objects: list) -> str:
    objs = "".join(
        f"<object><name>{escape(label)}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
        f"<ymax>{y1}</ymax></bndbox></object>"
        for label, (x0, y0, x1, y1) in objects
    )
    return (
        f"<annotation><folder>JPEGImages</folder><filename>{escape(filename)}</filename>"
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{objs}</annotation>"
    )


def make_voc_zip(
    out: Path | None = None,
    images: int = 60,
    seed: int = 0,
    labels: tuple[str, ...] = DEFAULT_LABELS,
    negative_fraction: float = 0.05,
) -> bytes:
    """Build a VOC zip of `images` synthetic images; written to `out` when given, always returned."""
    rng = random.Random(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(images):
            img, objects = make_image(rng, labels, negative=rng.random() < negative_fraction)
            stem = f"synth_{seed}_{i:05d}"
            jpg = io.BytesIO()
            img.save(jpg, "JPEG", quality=90)
            zf.writestr(f"JPEGImages/{stem}.jpg", jpg.getvalue())
            zf.writestr(f"Annotations/{stem}.xml", annotation_xml(f"{stem}.jpg", img.size, objects))
    data = buf.getvalue()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(data)
    return data
