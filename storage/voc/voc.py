"""Pascal VOC layouts: Annotations/ + JPEGImages/ (with ImageSets/Main splits), and XML beside each photo."""

from __future__ import annotations

from collections import defaultdict

from storage.domain import Split
from storage.voc import paths
from storage.voc.findings import Findings
from storage.voc.layouts import (
    IMAGE_SUFFIXES,
    Layout,
    Tree,
    pair_by_key,
    parse_xml_pairs,
    split_of_folder,
)

MAX_LIST_BYTES = 5 * 1024**2
# ImageSets/Main list files and the split they state; trainval, default (CVAT) and the like say none.
_LIST_SPLITS = {"train": Split.TRAIN, "val": Split.VAL, "test": Split.TEST}
_PRIORITY = [Split.TEST, Split.VAL, Split.TRAIN]  # a name in several lists takes the first of these


def read_classic(tree: Tree, prefix: str, findings: Findings) -> Layout:
    """Annotations/*.xml and JPEGImages/* (or images/*) under `prefix`, matched by file stem."""
    annotations: dict[str, str] = {}
    images: dict[str, list[str]] = defaultdict(list)
    lists: dict[str, str] = {}
    for rel in tree.rel:
        if not rel.startswith(prefix):
            continue
        parts = rel[len(prefix) :].split("/")
        folder = parts[0].lower() if len(parts) == 2 else None
        suffix, stem = paths.suffix(rel).lower(), paths.stem(rel)
        if folder == "annotations" and suffix == ".xml":
            annotations[stem] = rel
        elif folder in ("jpegimages", "images") and suffix in IMAGE_SUFFIXES:
            images[stem].append(rel)
        elif [p.lower() for p in parts[:2]] == ["imagesets", "main"] and len(parts) == 3:
            if suffix == ".txt" and stem.lower() in (*_LIST_SPLITS, "trainval", "default"):
                lists[stem.lower()] = rel
            tree.used.add(rel)  # per-class lists (dog_train.txt) are part of the format too
    splits = _image_sets(tree, lists)
    _mark_used(tree, images, annotations)
    pairs = pair_by_key(images, annotations, findings)
    entries = parse_xml_pairs(tree, pairs, lambda image: splits.get(paths.stem(image)), findings)
    used_lists = sorted(f"{name}.txt" for name in lists if name in _LIST_SPLITS)
    if "devkit" in tree.root.lower() or "voc20" in tree.root.lower():
        name = "Pascal VOC devkit"
    elif "labelmap.txt" in {paths.name(r).lower() for r in tree.rel}:
        name = "CVAT Pascal VOC 1.1"
    elif not any(r[len(prefix) :].lower().startswith("jpegimages/") for r in tree.rel):
        name = "Label Studio Pascal VOC"
    else:
        name = "Pascal VOC"
    source = f"ImageSets/Main ({', '.join(used_lists)})" if splits else ""
    return Layout(name, "voc", entries, source)


def _mark_used(tree: Tree, images: dict[str, list[str]], annotations: dict[str, str]) -> None:
    """Photos and XML of the layout are its files, paired or not (unpaired ones get their own warning)."""
    tree.used.update(annotations.values())
    tree.used.update(n for names in images.values() for n in names)


def _image_sets(tree: Tree, lists: dict[str, str]) -> dict[str, Split]:
    """Image stem -> split from ImageSets/Main/{train,val,test}.txt (first word of each line)."""
    out: dict[str, Split] = {}
    for split in reversed(_PRIORITY):  # later (higher priority) lists overwrite earlier ones
        name = next((n for n, s in _LIST_SPLITS.items() if s is split), "")
        if name not in lists:
            continue
        text = tree.read(lists[name], MAX_LIST_BYTES, "a split list").decode("utf-8", "replace")
        for line in text.splitlines():
            words = line.split()
            if words:
                out[words[0]] = split
    return out


def read_beside(tree: Tree, findings: Findings) -> Layout | None:
    """Each photo with a .xml of the same name in the same folder (labelImg; Roboflow 'Pascal VOC').

    None when no photo has an XML beside it. Folders named train/, valid/ or test/ give the split.
    """
    annotations: dict[str, str] = {}
    images: dict[str, list[str]] = defaultdict(list)
    for rel in tree.rel:
        suffix = paths.suffix(rel)
        key = rel[: len(rel) - len(suffix)]  # PurePosixPath(rel).with_suffix("")
        if suffix.lower() == ".xml":
            annotations[key] = rel
        elif suffix.lower() in IMAGE_SUFFIXES:
            images[key].append(rel)
    if not set(annotations) & set(images):
        return None
    _mark_used(tree, images, annotations)
    pairs = pair_by_key(images, annotations, findings)
    entries = parse_xml_pairs(tree, pairs, lambda image: split_of_folder(paths.parent(image)), findings)
    names = {paths.name(r).lower() for r in tree.rel}
    roboflow = "readme.roboflow.txt" in names or ".rf." in "".join(tree.rel[:50])
    split_folders = sorted(
        {r.split("/")[0] + "/" for r in tree.rel if "/" in r and split_of_folder(r.split("/")[0])}
    )
    source = f"{' '.join(split_folders)} folders" if any(e.split for e in entries) else ""
    return Layout(
        "Roboflow Pascal VOC" if roboflow else "labelImg (XML beside each photo)", "voc", entries, source
    )
