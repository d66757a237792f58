"""COCO JSON exports: Roboflow's `<split>/_annotations.coco.json` and plain `annotations/instances_*.json`.

COCO boxes are `[x, y, width, height]` in pixels from the top-left corner; they become corner boxes.
Roboflow adds a category (id 0, a supercategory named after the project) that no box uses: labels
come from the boxes, so it never becomes a label.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import PurePosixPath

from storage.domain import Split
from storage.errors import BadArchive
from storage.voc.annotation import Annotation, RawBox
from storage.voc.archive import check_name
from storage.voc.findings import Findings
from storage.voc.layouts import Entry, Layout, Tree, split_of_folder

MAX_JSON_BYTES = 64 * 1024**2  # about 300,000 boxes; parsing needs ~10x this in memory


def coco_json_files(tree: Tree) -> list[str]:
    """The COCO annotation files in the zip, or [] when it is not a COCO export."""
    out = []
    for rel in tree.rel:
        path = PurePosixPath(rel)
        name = path.name.lower()
        if name.endswith(".json") and (
            name.endswith(".coco.json")
            or name.startswith("instances_")
            or (len(path.parts) == 2 and path.parts[0].lower() == "annotations")
        ):
            out.append(rel)
    return sorted(out)


def _split_of_json(rel: str) -> Split | None:
    """`train/_annotations.coco.json` -> train; `annotations/instances_val2017.json` -> val."""
    path = PurePosixPath(rel)
    split = split_of_folder(str(path.parent))
    if split is None:
        stem = path.name.lower().removesuffix(".json").removeprefix("instances_").rstrip("0123456789")
        split = split_of_folder(stem)
    return split


def _load(tree: Tree, rel: str) -> dict:
    data = tree.read(rel, MAX_JSON_BYTES, "a COCO annotation file")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadArchive(f"{rel} is not valid JSON ({e}). Export the COCO dataset again.") from e
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "categories")):
        raise BadArchive(
            f"{rel} is JSON but not a COCO detection file (it needs 'images', 'annotations' and "
            "'categories' lists). Export the dataset again as COCO JSON."
        )
    return doc


def _box(ann: object, names: dict[int, str]) -> RawBox | None:
    """A COCO annotation as a corner box, or None when its category or numbers are unusable."""
    if not isinstance(ann, dict):
        return None
    bbox = ann.get("bbox")
    label = names.get(ann.get("category_id"))  # type: ignore[arg-type]
    if not label or not isinstance(bbox, list) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    return RawBox(label, x, y, x + w, y + h, False, False)


def _image_folders(tree: Tree, json_rel: str) -> list[str]:
    """Where a COCO file's images may be: beside it (Roboflow), or a folder named after its split."""
    here = str(PurePosixPath(json_rel).parent)
    folders = [] if here == "." else [here + "/"]
    stem = PurePosixPath(json_rel).name.lower().removesuffix(".json").removeprefix("instances_")
    for folder in sorted({str(PurePosixPath(r).parent) for r in tree.images()}):
        if PurePosixPath(folder).name.lower() == stem:
            folders.append(folder + "/")
    return folders or [""]


def read_coco(tree: Tree, json_files: list[str], findings: Findings) -> Layout:
    by_name: dict[str, list[str]] = defaultdict(list)  # photo base name -> members
    for rel in tree.images():
        by_name[PurePosixPath(rel).name].append(rel)
    entries: list[Entry] = []
    listed: set[str] = set()
    for json_rel in json_files:
        doc = _load(tree, json_rel)
        split = _split_of_json(json_rel)
        names = {c["id"]: str(c["name"]) for c in doc["categories"] if isinstance(c, dict) and "name" in c}
        boxes: dict[object, list[RawBox]] = defaultdict(list)
        unreadable: dict[object, int] = defaultdict(int)
        images = {im.get("id"): im for im in doc["images"] if isinstance(im, dict)}
        for ann in doc.get("annotations") or []:
            image_id = ann.get("image_id") if isinstance(ann, dict) else None
            if image_id not in images:
                findings.add("orphan_box", f"{PurePosixPath(json_rel).name} image id {image_id}")
                continue
            box = _box(ann, names)
            if box is None:
                unreadable[image_id] += 1
            else:
                boxes[image_id].append(box)
        folders = _image_folders(tree, json_rel)
        for image_id, im in images.items():
            file_name = str(im.get("file_name") or "")
            member = _find_image(file_name, folders, by_name, json_rel)
            if member is None:
                findings.add("no_image", file_name or f"image id {image_id}")
                continue
            listed.add(member)
            tree.used.add(member)
            ann = Annotation(None, None, boxes.get(image_id, []), unreadable.get(image_id, 0))
            entries.append(Entry(tree.full(member), ann, split))
    for rel in tree.images():
        if rel not in listed:
            findings.add("no_annotation", PurePosixPath(rel).name)
            tree.used.add(rel)
    roboflow = any(PurePosixPath(j).name.lower() == "_annotations.coco.json" for j in json_files)
    sources = sorted({str(PurePosixPath(j).parent) + "/" for j in json_files if _split_of_json(j)})
    source = f"{' '.join(sources)} folders" if roboflow and sources else ""
    if not roboflow and any(_split_of_json(j) for j in json_files):
        source = ", ".join(PurePosixPath(j).name for j in json_files)
    return Layout("Roboflow COCO" if roboflow else "COCO", "coco", entries, source)


def _find_image(
    file_name: str, folders: list[str], by_name: dict[str, list[str]], json_rel: str
) -> str | None:
    """The zip member a COCO `file_name` names; refuses names that climb out of the dataset."""
    if not file_name:
        return None
    safe = check_name(file_name)  # absolute or '../' names are refused like in the zip itself
    for folder in folders:
        candidates = [
            m
            for m in by_name.get(PurePosixPath(safe).name, [])
            if m == folder + safe or (m.startswith(folder) and m.endswith("/" + safe))
        ]
        if len(candidates) == 1:
            return candidates[0]
    anywhere = by_name.get(PurePosixPath(safe).name, [])
    return anywhere[0] if len(anywhere) == 1 else None
