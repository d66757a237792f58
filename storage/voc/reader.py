"""Read a dataset archive into image records, blob by blob, whatever layout the export has.

`layouts.detect` finds the photos and their boxes (and refuses hostile or unreadable exports before
anything is stored); this module then reads every photo's header, hashes it, stores it and computes
its near-duplicate hash, on a few threads. Errors refuse the dataset; warnings accept it and say
what was skipped, clipped or odd. Images are identified from their bytes (a `.jpg` may be a PNG).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from PIL import Image, ImageFile

from storage.blobs import sha256_hex
from storage.domain import Box, Split
from storage.voc import paths
from storage.voc.annotation import Annotation
from storage.voc.archive import Archive, is_junk
from storage.voc.findings import Findings, plural, render_findings
from storage.voc.layouts import Entry, Layout, detect
from storage.voc.neardup import dhash

__all__ = ["DatasetRead", "ImageDraft", "plural", "read_dataset"]

log = logging.getLogger(__name__)

# Truncated JPEGs are kept with a warning and used as far as their data goes, by the trainer and
# every preview (which set this too); their near-duplicate hash is of what decodes. Set here, the
# hash no longer depends on which of those modules the process happened to import first.
ImageFile.LOAD_TRUNCATED_IMAGES = True

SUPPORTED_FORMATS = {"JPEG", "PNG", "BMP", "WEBP"}
FORMAT_OF_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
MAX_PIXELS = 50_000_000
READ_THREADS = 2  # one per core: more threads only contend for the GIL
READ_BATCH = 16  # images per task


@dataclass(slots=True)
class ImageDraft:
    """An image read from the archive and stored as a blob, before it has a final split or an id."""

    filename: str
    sha256: str
    format: str
    width: int
    height: int
    mode: str
    boxes: list[Box]
    phash: int = 0
    split_hint: Split | None = None  # the export's split, if it has one


def _is_truncated(fmt: str, data: bytes) -> bool:
    tail = data[-4096:]
    if fmt == "JPEG":
        return b"\xff\xd9" not in tail
    if fmt == "PNG":
        return b"IEND" not in tail
    return False


def _clip_boxes(raw: list, width: int, height: int, name: str, findings: Findings) -> list[Box]:
    boxes = []
    for b in raw:
        x0, y0 = max(0.0, min(b.xmin, width)), max(0.0, min(b.ymin, height))
        x1, y1 = max(0.0, min(b.xmax, width)), max(0.0, min(b.ymax, height))
        if b.xmax <= b.xmin or b.ymax <= b.ymin or x1 <= x0 or y1 <= y0:
            findings.add("degenerate", name)
            continue
        if (x0, y0, x1, y1) != (b.xmin, b.ymin, b.xmax, b.ymax):
            findings.add("clipped", name)
        boxes.append(Box(b.label, x0, y0, x1, y1, b.difficult, b.truncated))
    return boxes


@dataclass(slots=True)
class DatasetRead:
    images: list[ImageDraft]
    findings: Findings
    layout: Layout

    @property
    def warnings(self) -> list[str]:
        return render_findings(self.findings)


def read_dataset(archive: Archive, put_blob: Callable[[bytes, str], None]) -> DatasetRead:
    """Detect the layout of `archive`, then hand each usable image to `put_blob(data, sha256)` to store.

    `put_blob` is called on the reading threads, as soon as an image has passed its checks (so its
    bytes are in memory once, and briefly): it must be thread-safe. Refusals (BadArchive) come
    before any image is stored: unknown layout, hostile XML/JSON/YAML.
    """
    findings = Findings()
    layout = detect(archive, [m.name for m in archive.members if not is_junk(m.name)], findings)
    drafts: list[ImageDraft] = []
    # Inflating, hashing, decoding thumbnails and writing release the GIL: a thread per core keeps
    # both busy. A task is a batch of images (fewer hand-offs between the threads); map() keeps the
    # archive's order, so the report is the same on every run.
    entries = layout.entries
    batches = [entries[i : i + READ_BATCH] for i in range(0, len(entries), READ_BATCH)]
    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="dataset-read") as pool:
        try:
            for batch in pool.map(lambda batch: [_read_image(archive, e, put_blob) for e in batch], batches):
                for draft, local in batch:
                    findings.merge(local)
                    if draft is not None:
                        drafts.append(draft)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failed write (a full disk) stops the rest
            raise
    return DatasetRead(drafts, findings, layout)


def _read_image(
    archive: Archive, entry: Entry, put_blob: Callable[[bytes, str], None]
) -> tuple[ImageDraft | None, Findings]:
    """Read one image's header and a 1/8-scale thumbnail and hand its bytes to `put_blob`; thread-safe."""
    findings = Findings()
    return _read_image_into(archive, entry, put_blob, findings), findings


def _read_image_into(
    archive: Archive, entry: Entry, put_blob: Callable[[bytes, str], None], findings: Findings
) -> ImageDraft | None:
    member, ann = entry.image, entry.annotation
    filename = paths.name(member)
    data = archive.read(member)
    try:
        # Images over MAX_PIXELS are refused below; Pillow raises on its own for far larger ones.
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height), mode = img.format or "?", img.size, img.mode
            orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "WEBP", "PNG") else 1
            phash = _phash(img) if fmt in SUPPORTED_FORMATS and width * height <= MAX_PIXELS else 0
    except Image.DecompressionBombError:
        findings.add("too_large", filename)
        return None
    except Exception:  # Pillow raises many types for broken files
        findings.add("corrupt", filename)
        return None
    if fmt not in SUPPORTED_FORMATS:
        findings.add("unsupported", f"{filename} ({fmt})")
        return None
    if width * height > MAX_PIXELS:
        findings.add("too_large", filename)
        return None
    if FORMAT_OF_SUFFIX.get(paths.suffix(filename).lower()) != fmt:
        findings.add("wrong_extension", f"{filename} is {fmt}")
    if _is_truncated(fmt, data):
        findings.add("truncated_file", filename)
    if mode != "RGB":
        findings.add("not_rgb", f"{filename} ({mode})")
    if orientation != 1:
        findings.add("exif_rotation", f"{filename} ({orientation})")
    if ann.size is not None and ann.size != (width, height):
        findings.add("size_mismatch", filename)
    if ann.unreadable_boxes:
        findings.add("unreadable_box", filename, ann.unreadable_boxes)
    boxes = _clip_boxes(_in_pixels(ann, width, height), width, height, filename, findings)
    digest = sha256_hex(data)
    put_blob(data, digest)
    return ImageDraft(filename, digest, fmt, width, height, mode, boxes, phash, entry.split)


def _phash(img: Image.Image) -> int:
    """The near-duplicate hash, or 0 when not even part of the pixels decodes."""
    try:
        return dhash(img)
    except Exception:  # Pillow raises many types for broken pixel data; the header was fine
        return 0


def _in_pixels(ann: Annotation, width: int, height: int) -> list:
    """The annotation's boxes in pixels (YOLO's are fractions of the image size until now)."""
    if not ann.normalized:
        return ann.boxes
    return [
        replace(b, xmin=b.xmin * width, ymin=b.ymin * height, xmax=b.xmax * width, ymax=b.ymax * height)
        for b in ann.boxes
    ]
