"""Dataset images as small JPEGs with their boxes drawn, for the dataset page's grid.

Decoding and drawing run in a thread (never on the bot's event loop); the last few hundred
thumbnails are kept in memory, since a stored image never changes.
"""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageFile

from edge.draw import draw_boxes
from storage.domain import ImageRecord

ImageFile.LOAD_TRUNCATED_IMAGES = True
SIZE = 320  # longest side, pixels
KEPT = 256


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """The size of an image's thumbnail: SIZE on its longest side, never enlarged."""
    scale = min(1.0, SIZE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail(path: Path, image: ImageRecord, labels: Sequence[str]) -> bytes:
    """JPEG of the image scaled to SIZE on its longest side, with its boxes drawn (in stored pixels, as
    labelled: no EXIF turn, like the dataset preview)."""
    with Image.open(path) as src:
        src.draft("RGB", (SIZE, SIZE))  # JPEG: decode at a reduced scale
        small = src.convert("RGB").resize(thumbnail_size(image.width, image.height))
    scale = small.width / max(image.width, 1)
    draw_boxes(small, [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in image.boxes], labels, scale)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()


class Thumbnails:
    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    async def get(self, dataset_id: int, path: Path, image: ImageRecord, labels: Sequence[str]) -> bytes:
        key = (dataset_id, image.id or 0)
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        data = await asyncio.to_thread(thumbnail, path, image, labels)
        self._kept[key] = data
        while len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        return data
