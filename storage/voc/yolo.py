"""YOLO exports (Roboflow, Ultralytics): `data.yaml` names the classes; `<split>/images/`, `<split>/labels/`.

A label file has one line per object, `class cx cy w h`, in fractions of the image size (segment
exports list polygon points instead; their bounding box is used). The photo's size is only known
once its header is read, so boxes stay normalised until then (`Annotation.normalized`).

`data.yaml` is read with YAML's safe loader (no tags, no code). Its paths are matched against the
zip's own folders by their last parts (Roboflow writes `../train/images`); a path that leaves the
zip and names no folder in it is refused.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

from storage.domain import Split
from storage.errors import BadArchive
from storage.voc.annotation import Annotation, RawBox
from storage.voc.findings import Findings
from storage.voc.layouts import Entry, Layout, Tree, split_of_folder

MAX_YAML_BYTES = 1024**2
MAX_LABEL_BYTES = 5 * 1024**2
_YAML_SPLITS = {"train": Split.TRAIN, "val": Split.VAL, "test": Split.TEST}


def yolo_yaml(tree: Tree) -> str | None:
    """The data.yaml of a YOLO export, at the top or one folder down; None when there is none."""
    found = [r for r in tree.rel if PurePosixPath(r).name.lower() in ("data.yaml", "data.yml")]
    found.sort(key=lambda r: r.count("/"))
    if found and found[0].count("/") <= 1:
        return found[0]
    if any("/labels/" in "/" + r and r.endswith(".txt") for r in tree.rel):
        raise BadArchive(
            "The zip looks like a YOLO export (labels/ folders of .txt files) but has no data.yaml, "
            "which names the classes. Export it again from Roboflow or your tool with data.yaml included."
        )
    return None


def _names(doc: dict, rel: str) -> list[str]:
    names = doc.get("names")
    if isinstance(names, dict):  # Ultralytics also writes {0: name, 1: name}
        try:
            names = [names[k] for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, str | int) for n in names):
        raise BadArchive(
            f"{rel} has no list of class names ('names: [ball, cone]'). Export the dataset again with "
            "its data.yaml."
        )
    return [str(n) for n in names]


def _load_yaml(tree: Tree, rel: str) -> dict:
    import yaml  # here: every ingest imports this module, few read YAML (PyYAML takes 10-20 ms)

    text = tree.read(rel, MAX_YAML_BYTES, "data.yaml")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BadArchive(
            f"{rel} could not be read as plain YAML ({str(e).splitlines()[0]}); tags and other "
            "special YAML are refused. Export the dataset again or fix data.yaml by hand."
        ) from e
    if not isinstance(doc, dict):
        raise BadArchive(f"{rel} is not a YOLO data.yaml (it should map names, train and val).")
    return doc


def _resolve(path: str, yaml_dir: str, folders: set[str]) -> tuple[str | None, bool]:
    """The image folder inside the zip that a data.yaml path means (or None), and whether the path
    itself points outside the zip.

    Relative paths resolve from data.yaml's folder; paths that climb out of the zip or are absolute
    (made on someone's computer) are matched by their last one or two parts: `../train/images` ->
    `train/images`, `/home/me/data/images/val` -> `images/val`.
    """
    norm = path.replace("\\", "/").strip()
    parts: list[str] = [] if norm.startswith("/") else [p for p in yaml_dir.split("/") if p]
    escaped = norm.startswith("/") or (len(norm) > 1 and norm[1] == ":")
    for part in norm.lstrip("/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            else:
                escaped = True
        else:
            parts.append(part)
    if not escaped and "/".join(parts) in folders:
        return "/".join(parts), escaped
    for n in (2, 1):
        tail = "/".join(parts[-n:])
        matches = [f for f in folders if f == tail or f.endswith("/" + tail)]
        if len(matches) == 1:
            return matches[0], escaped
    return None, escaped


def read_yolo(tree: Tree, yaml_rel: str, findings: Findings) -> Layout:
    doc = _load_yaml(tree, yaml_rel)
    names = _names(doc, yaml_rel)
    yaml_dir = str(PurePosixPath(yaml_rel).parent).removeprefix(".")
    images = tree.images()
    folders = {str(PurePosixPath(r).parent) for r in images}
    split_of: dict[str, Split] = {}
    for key, split in _YAML_SPLITS.items():
        values = doc.get(key)
        for value in values if isinstance(values, list) else [values] if values else []:
            folder, outside = _resolve(str(value), yaml_dir, folders)
            if folder is not None:
                split_of[folder] = split
            elif outside:
                raise BadArchive(
                    f"{yaml_rel} points {key} at {value!r}, outside the zip, and no folder in the zip "
                    "matches it. FieldLens reads only the files inside the zip: make the paths in "
                    "data.yaml relative (train: train/images) and zip the dataset folder."
                )
            else:
                findings.add("missing_split", f"{key}: {value}")
    entries: list[Entry] = []
    for rel in images:
        folder = str(PurePosixPath(rel).parent)
        hint = split_of.get(folder, split_of_folder(folder))
        tree.used.add(rel)
        ann = _read_labels(tree, _label_path(rel), names, findings, PurePosixPath(rel).name)
        entries.append(Entry(tree.full(rel), ann, hint))
    source = "data.yaml" if split_of else ("folder names" if any(e.split for e in entries) else "")
    roboflow = any(PurePosixPath(r).name.lower() == "readme.roboflow.txt" for r in tree.rel)
    return Layout("Roboflow YOLO" if roboflow else "YOLO (Ultralytics)", "yolo", entries, source)


def _label_path(image_rel: str) -> str:
    """Ultralytics' rule: the last `images` folder in the path becomes `labels`, the suffix `.txt`."""
    parts = list(PurePosixPath(image_rel).with_suffix(".txt").parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return "/".join(parts)


def _read_labels(tree: Tree, rel: str, names: list[str], findings: Findings, image: str) -> Annotation:
    ann = Annotation(None, None, normalized=True)
    if rel not in tree.rel_set:
        findings.add("missing_label_file", image)
        return ann
    text = tree.read(rel, MAX_LABEL_BYTES, "a label file").decode("utf-8", "replace")
    for line in text.splitlines():
        box = _parse_line(line.split(), names)
        if box is None:
            if line.strip():
                ann.unreadable_boxes += 1
        else:
            ann.boxes.append(box)
    return ann


def _parse_line(words: list[str], names: list[str]) -> RawBox | None:
    """`class cx cy w h`, or `class x1 y1 x2 y2 ...` (a polygon), as a normalised corner box."""
    if len(words) < 5 or len(words) % 2 == 0:
        return None
    try:
        cls = int(words[0])
        values = [float(w) for w in words[1:]]
    except ValueError:
        return None
    if not 0 <= cls < len(names) or not all(math.isfinite(v) for v in values):
        return None
    if len(values) == 4:
        cx, cy, w, h = values
        return RawBox(names[cls], cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, False, False)
    xs, ys = values[0::2], values[1::2]
    return RawBox(names[cls], min(xs), min(ys), max(xs), max(ys), False, False)
