"""Recognise how a dataset zip is laid out and list its photos with their boxes and export split.

Teams bring what their labelling tool exports; FieldLens detects the layout from the file names
and never asks. Every layout becomes the same list of entries (photo, boxes, split), so the rest of
ingest does not know which tool made the zip. Paths named inside files (COCO `file_name`, YOLO
`data.yaml`) are only ever matched against the zip's own member list, never opened on disk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from storage.domain import Split
from storage.errors import BadArchive
from storage.voc import paths
from storage.voc.annotation import Annotation, MalformedAnnotation, parse_annotation
from storage.voc.archive import Archive
from storage.voc.findings import Findings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".heic", ".jfif"}
MAX_XML_BYTES = 5 * 1024**2
SPLIT_NAMES = {
    "train": Split.TRAIN,
    "training": Split.TRAIN,
    "valid": Split.VAL,
    "val": Split.VAL,
    "validation": Split.VAL,
    "test": Split.TEST,
}
# Folders that are part of a layout, so never taken for a wrapping folder.
_LAYOUT_FOLDERS = {"annotations", "jpegimages", "imagesets", "images", "labels", *SPLIT_NAMES}
# Files exports add beside the data; used or skipped without a warning.
_KNOWN_EXTRAS = {"readme.roboflow.txt", "readme.dataset.txt", "labelmap.txt", "classes.txt", "data.yaml"}

LAYOUTS_WE_READ = (
    "Pascal VOC (Annotations/ and JPEGImages/ folders; CVAT, VOC devkit), "
    "XML beside each photo (labelImg, Roboflow 'Pascal VOC'), "
    "COCO JSON (Roboflow 'COCO', annotations/instances_*.json) and "
    "YOLO (data.yaml with images/ and labels/ folders; Roboflow or Ultralytics 'YOLO')"
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One photo of the export: its member name, its boxes and the split the export gave it."""

    image: str
    annotation: Annotation
    split: Split | None


@dataclass(slots=True)
class Layout:
    name: str  # what made the zip, in words: "Roboflow Pascal VOC"
    converter: str  # voc | coco | yolo: how boxes were read
    entries: list[Entry]
    split_source: str = ""  # where the export's split came from; '' when it has none


class Tree:
    """The zip's member names below the dataset's root folder, with helpers to look them up."""

    def __init__(self, archive: Archive, names: list[str], findings: Findings) -> None:
        self.archive = archive
        self._sizes = {m.name: m.size for m in archive.members}
        self.root = _wrapper(names)
        if self.root:
            findings.add("wrapper", self.root.rstrip("/"))
        self.rel = [n[len(self.root) :] for n in names]
        self.rel_set = set(self.rel)
        self.used: set[str] = set()  # relative names a layout read

    def full(self, rel: str) -> str:
        return self.root + rel

    def read(self, rel: str, limit: int, what: str) -> bytes:
        """A member's bytes, refused before reading when the zip says it is larger than `limit`."""
        size = self._sizes.get(self.full(rel), 0)
        data = self.archive.read(self.full(rel)) if size <= limit else b""
        if size > limit or len(data) > limit:
            raise BadArchive(
                f"{rel} is {max(size, len(data)) / 1024**2:.0f} MB, too large for {what} (at most "
                f"{limit / 1024**2:.0f} MB). Split the dataset into smaller exports and combine them."
            )
        self.used.add(rel)
        return data

    def images(self) -> list[str]:
        return [n for n in self.rel if paths.suffix(n).lower() in IMAGE_SUFFIXES]

    def top_folders(self) -> list[str]:
        return sorted({n.split("/")[0] for n in self.rel if "/" in n})


def _wrapper(names: list[str]) -> str:
    """The folders every member sits in ('' or 'my_dataset/' or 'VOCdevkit/VOC2012/')."""
    prefix = ""
    while names and all(n.startswith(prefix) and "/" in n[len(prefix) :] for n in names):
        tops = {n[len(prefix) :].split("/")[0] for n in names}
        top = next(iter(tops))
        if len(tops) != 1 or top.lower() in _LAYOUT_FOLDERS:
            break
        prefix += top + "/"
    return prefix


def split_of_folder(path: str) -> Split | None:
    """The split a folder name states (`train/`, `valid/`, `images/val/` ...), if any."""
    for part in reversed(paths.parts(path)):
        split = SPLIT_NAMES.get(part.lower())
        if split is not None:
            return split
    return None


def pair_by_key(
    images: dict[str, list[str]], annotations: dict[str, str], findings: Findings
) -> list[tuple[str, str]]:
    """(image, annotation) pairs with the same key; the rest counted as findings."""
    for key, ann in annotations.items():
        if key not in images:
            findings.add("no_image", paths.name(ann))
    pairs = []
    for key, names in sorted(images.items()):
        if key not in annotations:
            for n in names:
                findings.add("no_annotation", paths.name(n))
        elif len(names) > 1:
            for n in names:
                findings.add("ambiguous", paths.name(n))
        else:
            pairs.append((names[0], annotations[key]))
    return pairs


def parse_xml_pairs(
    tree: Tree, pairs: list[tuple[str, str]], split_of: Callable[[str], Split | None], findings: Findings
) -> list[Entry]:
    """Parse each pair's VOC XML (all before any image is stored: hostile XML refuses the zip)."""
    entries = []
    for image, xml in pairs:
        tree.used.add(image)
        data = tree.read(xml, MAX_XML_BYTES, "an annotation file")
        try:
            ann = parse_annotation(data, paths.name(xml))
        except MalformedAnnotation:
            findings.add("malformed_xml", paths.name(xml))
            continue
        entries.append(Entry(tree.full(image), ann, split_of(image)))
    return entries


def _voc_roots(rel: list[str]) -> list[str]:
    """Folders holding Annotations/ beside JPEGImages/ (or images/, as Label Studio names it)."""
    found: dict[str, set[str]] = defaultdict(set)
    for n in rel:
        parts = n.split("/")
        for depth in range(len(parts) - 1):
            if parts[depth].lower() in ("annotations", "jpegimages", "images"):
                found["/".join(parts[:depth]) + ("/" if depth else "")].add(parts[depth].lower())
    return sorted(
        p for p, kinds in found.items() if "annotations" in kinds and kinds & {"jpegimages", "images"}
    )


def detect(archive: Archive, names: list[str], findings: Findings) -> Layout:
    """The layout of the archive (names: its members, junk removed). Refuses what matches none."""
    # Imported here: each format's module imports Entry/Tree from this one.
    from storage.voc.coco import coco_json_files, read_coco
    from storage.voc.voc import read_beside, read_classic
    from storage.voc.yolo import read_yolo, yolo_yaml

    tree = Tree(archive, names, findings)
    voc_roots = _voc_roots(tree.rel)
    if len(voc_roots) > 1:
        raise BadArchive(
            f"The zip holds several datasets ({', '.join(r or '(top)' for r in voc_roots[:4])}). Upload "
            "each dataset on its own and combine them with /dataset combine. Zip the dataset folders "
            "themselves, not their parent."
        )
    if voc_roots:
        layout = read_classic(tree, voc_roots[0], findings)
    elif json_files := coco_json_files(tree):
        layout = read_coco(tree, json_files, findings)
    elif (yaml_name := yolo_yaml(tree)) is not None:
        layout = read_yolo(tree, yaml_name, findings)
    elif beside := read_beside(tree, findings):
        layout = beside
    else:
        raise BadArchive(_no_layout_message(tree))
    for rel in tree.rel:
        if rel not in tree.used and paths.name(rel).lower() not in _KNOWN_EXTRAS:
            findings.add("ignored", rel)
    return layout


def _no_layout_message(tree: Tree) -> str:
    folders = {f.lower(): f for f in tree.top_folders()}
    what = ", ".join(f"{f}/" for f in list(folders.values())[:6])
    loose = [n for n in tree.rel if "/" not in n]
    if loose:
        what = ", ".join(filter(None, [what, ", ".join(loose[:4]) + (", ..." if len(loose) > 4 else "")]))
    what = what or "nothing usable"
    if "jpegimages" in folders and "annotations" not in folders:
        start = "The zip has no Annotations/ folder"
    elif "annotations" in folders and "jpegimages" not in folders:
        start = "The zip has no JPEGImages/ folder"
    else:
        start = "FieldLens cannot tell how this zip is laid out"
    return (
        f"{start} (found: {what}), and no photo has labels beside it. FieldLens reads {LAYOUTS_WE_READ}. "
        "Export the dataset again from your labelling tool in one of these formats and upload that zip "
        "as it is: do not zip its parent folder or take folders out."
    )
