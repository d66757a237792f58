"""Build the zips labelling tools export (Roboflow, CVAT, labelImg, VOC devkit, COCO, YOLO) from one dataset.

Every layout holds the same photos and boxes, so a test can check that each one ingests into the
same stored dataset. Nothing here is a committed binary: images are drawn with Pillow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.vocdata import image_bytes, make_zip, voc_xml

LABELS = ("ball", "cone")
W, H = 64, 48


@dataclass(frozen=True)
class Photo:
    stem: str
    split: str  # train | valid | test
    boxes: tuple[tuple[str, float, float, float, float], ...]  # label, x0, y0, x1, y1 in pixels

    @property
    def jpg(self) -> bytes:
        n = int(self.stem.split("_")[-1])
        return image_bytes(W, H, colour=(20 * n % 256, 90 + 7 * n % 100, 40 + 13 * n % 200))


def photos(train: int = 4, valid: int = 2, test: int = 1) -> list[Photo]:
    out = []
    n = 0
    for split, count in (("train", train), ("valid", valid), ("test", test)):
        for _ in range(count):
            label = LABELS[n % 2]
            boxes = ((label, 4.0 + n, 6.0, 30.0 + n, 40.0),) if n % 5 != 4 else ()  # some negatives
            out.append(Photo(f"shot_{n * 7:03d}", split, boxes))
            n += 1
    return out


def _rf(stem: str) -> str:
    """Roboflow's file naming: IMG_0042.jpg becomes IMG_0042_jpg.rf.<32 hex>.jpg."""
    return f"{stem}_jpg.rf.{(stem.encode().hex() * 8)[:32]}"


def roboflow_voc(ps: list[Photo]) -> bytes:
    files = {"README.roboflow.txt": b"exported from roboflow", "README.dataset.txt": b"my dataset"}
    for p in ps:
        name = _rf(p.stem)
        files[f"{p.split}/{name}.jpg"] = p.jpg
        files[f"{p.split}/{name}.xml"] = voc_xml(f"{name}.jpg", (W, H), list(p.boxes))
    return make_zip(files)


def labelimg(ps: list[Photo], folder: str = "my photos/") -> bytes:
    files = {}
    for p in ps:
        files[f"{folder}{p.stem}.jpg"] = p.jpg
        files[f"{folder}{p.stem}.xml"] = voc_xml(f"{p.stem}.jpg", (W, H), list(p.boxes))
    return make_zip(files)


def classic_voc(ps: list[Photo], prefix: str = "", lists: bool = True, cvat: bool = False) -> bytes:
    files: dict[str, bytes] = {}
    for p in ps:
        files[f"{prefix}JPEGImages/{p.stem}.jpg"] = p.jpg
        files[f"{prefix}Annotations/{p.stem}.xml"] = voc_xml(f"{p.stem}.jpg", (W, H), list(p.boxes))
    if lists:
        names = {"train": "train", "valid": "val", "test": "test"}
        for split, list_name in names.items():
            ids = [p.stem for p in ps if p.split == split]
            if ids:
                files[f"{prefix}ImageSets/Main/{list_name}.txt"] = ("\n".join(ids) + "\n").encode()
        files[f"{prefix}ImageSets/Main/trainval.txt"] = "\n".join(p.stem for p in ps).encode()
        files[f"{prefix}ImageSets/Main/{LABELS[0]}_train.txt"] = b"shot_000  1\n"  # per-class list
    if cvat:
        files[f"{prefix}labelmap.txt"] = (
            b"# label:color_rgb:parts:actions\nball:250,50,83::\ncone:0,0,255::\n"
        )
    return make_zip(files)


def label_studio(ps: list[Photo]) -> bytes:
    """Label Studio's "Pascal VOC XML" export: Annotations/ and images/."""
    files = {}
    for p in ps:
        files[f"images/{p.stem}.jpg"] = p.jpg
        files[f"Annotations/{p.stem}.xml"] = voc_xml(f"{p.stem}.jpg", (W, H), list(p.boxes))
    return make_zip(files)


def _coco_doc(ps: list[Photo], file_name: callable) -> bytes:
    cats = [{"id": 0, "name": "things", "supercategory": "none"}] + [
        {"id": i + 1, "name": lbl, "supercategory": "things"} for i, lbl in enumerate(LABELS)
    ]
    ids = {lbl: i + 1 for i, lbl in enumerate(LABELS)}
    images, anns = [], []
    for i, p in enumerate(ps):
        images.append({"id": i, "file_name": file_name(p), "width": W, "height": H})
        for label, x0, y0, x1, y1 in p.boxes:
            anns.append(
                {
                    "id": len(anns),
                    "image_id": i,
                    "category_id": ids[label],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    return json.dumps({"info": {}, "images": images, "annotations": anns, "categories": cats}).encode()


def roboflow_coco(ps: list[Photo]) -> bytes:
    files = {"README.roboflow.txt": b"exported from roboflow"}
    for split in ("train", "valid", "test"):
        part = [p for p in ps if p.split == split]
        if part:
            files[f"{split}/_annotations.coco.json"] = _coco_doc(part, lambda p: f"{_rf(p.stem)}.jpg")
            for p in part:
                files[f"{split}/{_rf(p.stem)}.jpg"] = p.jpg
    return make_zip(files)


def plain_coco(ps: list[Photo]) -> bytes:
    files = {}
    for split, folder in (("train", "train2017"), ("valid", "val2017")):
        part = [p for p in ps if p.split == split or (split == "valid" and p.split == "test")]
        files[f"annotations/instances_{folder}.json"] = _coco_doc(part, lambda p: f"{p.stem}.jpg")
        for p in part:
            files[f"{folder}/{p.stem}.jpg"] = p.jpg
    return make_zip(files)


def yolo(ps: list[Photo], yaml_text: str | None = None) -> bytes:
    files = {
        "README.roboflow.txt": b"exported from roboflow",
        "data.yaml": (
            yaml_text
            or "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 2\n"
            f"names: [{', '.join(LABELS)}]\n"
        ).encode(),
    }
    for p in ps:
        files[f"{p.split}/images/{_rf(p.stem)}.jpg"] = p.jpg
        lines = []
        for label, x0, y0, x1, y1 in p.boxes:
            cx, cy, w, h = (x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H
            lines.append(f"{LABELS.index(label)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        files[f"{p.split}/labels/{_rf(p.stem)}.txt"] = "\n".join(lines).encode()
    return make_zip(files)
