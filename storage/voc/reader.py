"""Validate a Pascal VOC archive and read it into image records, blob by blob.

Errors refuse the dataset; warnings accept it and say what was skipped, clipped or odd.
Nothing is dropped silently: every skip is counted and named (first few) in a warning.
Images are identified from their bytes (a `.jpg` may be a PNG) by reading headers only.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from PIL import Image

from storage.blobs import sha256_hex
from storage.domain import Box
from storage.errors import BadArchive
from storage.voc.annotation import Annotation, MalformedAnnotation, parse_annotation
from storage.voc.archive import Archive, Member, is_junk

log = logging.getLogger(__name__)

SUPPORTED_FORMATS = {"JPEG", "PNG", "BMP", "WEBP"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".heic", ".jfif"}
MAX_PIXELS = 50_000_000
MAX_XML_BYTES = 5 * 1024**2
FIRST_FEW = 5
READ_THREADS = 3


def plural(n: int, word: str) -> str:
    many = word + "es" if word.endswith(("s", "x")) else word + "s"
    return f"{n:,} {word if n == 1 else many}"


@dataclass(slots=True)
class ImageDraft:
    """An image read from the archive and stored as a blob, before it has a split or an id."""

    filename: str
    sha256: str
    format: str
    width: int
    height: int
    mode: str
    boxes: list[Box]


@dataclass(slots=True)
class Findings:
    """Counted problems of one kind, with the first few names for the report."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    names: dict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))  # ordered set

    def add(self, key: str, name: str, n: int = 1) -> None:
        self.counts[key] += n
        self.names[key][name] = None

    def merge(self, other: Findings) -> None:
        for key, n in other.counts.items():
            self.counts[key] += n
            self.names[key].update(other.names[key])

    def first(self, key: str) -> str:
        names = list(self.names[key])
        more = ", ..." if len(names) > FIRST_FEW else ""
        return ", ".join(names[:FIRST_FEW]) + more


# key -> (noun, sentence). {n} is the count phrase, {names} the first few names; {are}, {were},
# {have}, {state} agree with the count.
_WARNINGS: dict[str, tuple[str, str]] = {
    "wrapper": ("folder", "The dataset sits inside one wrapping folder ({names}); it was read from there."),
    "no_annotation": ("image", "{n} had no annotation file and {were} skipped ({names})."),
    "no_image": ("annotation", "{n} had no matching image and {were} skipped ({names})."),
    "ambiguous": (
        "image",
        "{n} share a name stem with another image and {were} skipped ({names}). "
        "Give every image its own name.",
    ),
    "malformed_xml": ("annotation", "{n} could not be read and their images were skipped ({names})."),
    "corrupt": (
        "image",
        "{n} could not be read as an image and {were} skipped ({names}). Re-export or remove them.",
    ),
    "unsupported": (
        "image",
        "{n} {are} in a format FieldLens does not read and {were} skipped ({names}). "
        "Convert them to JPEG or PNG.",
    ),
    "too_large": ("image", "{n} {have} over 50 megapixels and {were} skipped ({names}). Resize them."),
    "truncated_file": (
        "image",
        "{n} {are} cut short (the file ends early) and {are} used as far as "
        "the data goes ({names}). Re-export them if the preview shows grey areas.",
    ),
    "clipped": ("box", "{n} went outside the image and {were} clipped to its edge ({names})."),
    "degenerate": ("box", "{n} had zero or negative width or height and {were} dropped ({names})."),
    "unreadable_box": ("box", "{n} had no label or no numeric coordinates and {were} dropped ({names})."),
    "size_mismatch": (
        "annotation",
        "{n} {state} an image size that differs from the real image; the "
        "real size is used ({names}). Check that the photos were not resized after labelling.",
    ),
    "wrong_extension": (
        "image",
        "{n} {have} a file extension that does not match the real format and "
        "{are} read by the real format ({names}).",
    ),
    "not_rgb": (
        "image",
        "{n} {are} not plain RGB (grayscale, palette or transparency) and {are} "
        "converted to RGB for training ({names}).",
    ),
    "exif_rotation": (
        "image",
        "{n} carry an EXIF rotation flag ({names}). FieldLens uses the pixels as "
        "stored, as annotation tools do; if boxes look rotated in the preview, save those "
        "photos upright and label them again.",
    ),
    "ignored": ("file", "{n} outside Annotations/ and JPEGImages/ {were} ignored ({names})."),
}


def render_findings(findings: Findings) -> list[str]:
    out = []
    for key, (noun, template) in _WARNINGS.items():
        n = findings.counts.get(key, 0)
        if n:
            one = n == 1
            out.append(
                template.format(
                    n=plural(n, noun),
                    names=findings.first(key),
                    are="is" if one else "are",
                    were="was" if one else "were",
                    have="has" if one else "have",
                    state="states" if one else "state",
                )
            )
    return out


def _find_root(members: list[Member], findings: Findings) -> str:
    """Return the folder prefix holding Annotations/ and JPEGImages/ ('' or 'wrapper/')."""

    def top_dirs(prefix: str) -> dict[str, str]:
        dirs = {}
        for m in members:
            if m.name.startswith(prefix):
                rest = m.name[len(prefix) :].split("/")
                if len(rest) > 1:
                    dirs[rest[0].lower()] = rest[0]
        return dirs

    for prefix in [""] + [
        d + "/" for d in sorted(set(top_dirs("").values())) if d.lower() not in ("annotations", "jpegimages")
    ]:
        dirs = top_dirs(prefix)
        if "annotations" in dirs and "jpegimages" in dirs:
            if prefix:
                if len(top_dirs("")) > 1:
                    break  # several top folders: ambiguous, fall through to the error
                findings.add("wrapper", prefix.rstrip("/"))
            return prefix
    found = sorted(set(top_dirs("").values()))
    has_ann = any(d.lower() == "annotations" for d in found)
    has_img = any(d.lower() == "jpegimages" for d in found)
    what = ", ".join(f"{d}/" for d in found[:6]) or "no folders, only loose files"
    if has_img and not has_ann:
        missing = "no Annotations/ folder"
    elif has_ann and not has_img:
        missing = "no JPEGImages/ folder"
    else:
        missing = "no Annotations/ and JPEGImages/ folders"
    raise BadArchive(
        f"The zip has {missing} (found: {what}). A Pascal VOC dataset has the XML files in "
        "Annotations/ and the photos in JPEGImages/. Zip those two folders themselves, not their parent."
    )


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
class VOCRead:
    images: list[ImageDraft]
    findings: Findings

    @property
    def warnings(self) -> list[str]:
        return render_findings(self.findings)


def read_voc(archive: Archive, put_blob: Callable[[bytes, str], None]) -> VOCRead:
    """Validate `archive` and hand each usable image to `put_blob(data, sha256)` to store.

    Refusals (BadArchive) before any image is stored: bad layout, hostile XML.
    """
    findings = Findings()
    members = [m for m in archive.members if not is_junk(m.name)]
    root = _find_root(members, findings)
    annotations: dict[str, str] = {}  # stem -> member name
    images: dict[str, list[str]] = defaultdict(list)
    for m in members:
        rel = m.name[len(root) :] if m.name.startswith(root) else None
        parts = rel.split("/") if rel is not None else []
        folder = parts[0].lower() if len(parts) == 2 else None
        path = PurePosixPath(m.name)
        if folder == "annotations" and path.suffix.lower() == ".xml":
            annotations[path.stem] = m.name
        elif folder == "jpegimages" and path.suffix.lower() in IMAGE_SUFFIXES:
            images[path.stem].append(m.name)
        else:
            findings.add("ignored", m.name)

    # XML first: it is small, and a hostile file must refuse the dataset before anything is stored.
    parsed = {}
    for stem, name in sorted(annotations.items()):
        if stem not in images:
            findings.add("no_image", PurePosixPath(name).name)
            continue
        data = archive.read(name)
        if len(data) > MAX_XML_BYTES:
            raise BadArchive(f"{name} is {len(data):,} bytes, too large for an annotation file; refused.")
        try:
            parsed[stem] = parse_annotation(data, PurePosixPath(name).name)
        except MalformedAnnotation:
            findings.add("malformed_xml", PurePosixPath(name).name)

    drafts: list[ImageDraft] = []
    jobs: list[tuple[str, Annotation]] = []
    for stem, names in sorted(images.items()):
        if stem not in annotations:
            for n in names:
                findings.add("no_annotation", PurePosixPath(n).name)
            continue
        if len(names) > 1:
            for n in names:
                findings.add("ambiguous", PurePosixPath(n).name)
            continue
        ann = parsed.get(stem)
        if ann is not None:  # None: malformed XML, already counted
            jobs.append((names[0], ann))
    # Inflating, hashing and writing release the GIL: a few threads keep both cores busy. map()
    # keeps the archive's order, so the report is the same on every run.
    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="voc-read") as pool:
        for draft, local in pool.map(lambda job: _read_image(archive, job[0], job[1], put_blob), jobs):
            findings.merge(local)
            if draft is not None:
                drafts.append(draft)
    return VOCRead(drafts, findings)


def _read_image(
    archive: Archive, member: str, ann: Annotation, put_blob: Callable[[bytes, str], None]
) -> tuple[ImageDraft | None, Findings]:
    """Read one image's header (never its pixels) and hand its bytes to `put_blob`; thread-safe."""
    findings = Findings()
    return _read_image_into(archive, member, ann, put_blob, findings), findings


def _read_image_into(
    archive: Archive, member: str, ann: Annotation, put_blob: Callable[[bytes, str], None], findings: Findings
) -> ImageDraft | None:
    filename = PurePosixPath(member).name
    data = archive.read(member)
    try:
        # Images over MAX_PIXELS are refused below; Pillow raises on its own for far larger ones.
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height), mode = img.format or "?", img.size, img.mode
            orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "WEBP", "PNG") else 1
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
    suffix = PurePosixPath(filename).suffix.lower()
    expected = {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".jfif": "JPEG",
        ".png": "PNG",
        ".bmp": "BMP",
        ".webp": "WEBP",
    }
    if expected.get(suffix) != fmt:
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
    boxes = _clip_boxes(ann.boxes, width, height, filename, findings)
    digest = sha256_hex(data)
    put_blob(data, digest)
    return ImageDraft(filename, digest, fmt, width, height, mode, boxes)
