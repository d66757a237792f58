"""A corpus of hostile and broken zips: each refused with its own message, nothing stored."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest

from storage.errors import UserError
from storage.services import Services
from tests import exports
from tests.vocdata import good_files, image_bytes, make_zip, patch_central_directory, voc_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><object><name>&lol2;</name></object></annotation>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""


def _with(files: dict[str, bytes] | bytes, **extra: bytes) -> dict[str, bytes]:
    if isinstance(files, bytes):  # an export zip: take its files
        with zipfile.ZipFile(io.BytesIO(files)) as zf:
            files = {n: zf.read(n) for n in zf.namelist()}
    return {**files, **extra}


PS_FILES = exports.photos(train=2, valid=1, test=1)


def _damaged(data: bytes, name: str, local_offset: int | None = None) -> bytes:
    """`data` with one byte of `name` flipped: mid-data, or at `local_offset` of its local header."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    out = bytearray(data)
    if local_offset is None:
        name_size, extra_size = (
            int.from_bytes(out[info.header_offset + k : info.header_offset + k + 2], "little")
            for k in (26, 28)
        )
        local_offset = 30 + name_size + extra_size + info.compress_size // 2
    out[info.header_offset + local_offset] ^= 0xFF
    return bytes(out)


def _coco_naming(file_name: str) -> bytes:
    return json.dumps(
        {
            "images": [{"id": 1, "file_name": file_name, "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9]}],
            "categories": [{"id": 1, "name": "ball"}],
        }
    ).encode()


CASES = {
    "zip slip": (lambda: make_zip(_with(good_files(), **{"../../evil.jpg": b"x"})), "climbs out"),
    "zip slip in a folder": (
        lambda: make_zip(_with(good_files(), **{"JPEGImages/../../../etc/cron.d/x": b"x"})),
        "climbs out",
    ),
    "absolute path": (lambda: make_zip(_with(good_files(), **{"/etc/passwd": b"x"})), "absolute path"),
    "windows drive": (lambda: make_zip(_with(good_files(), **{"C:\\Windows\\x.jpg": b"x"})), "absolute path"),
    "symlink": (
        lambda: make_zip(good_files(), symlinks={"JPEGImages/link.jpg": "/etc/passwd"}),
        "symbolic link",
    ),
    "zip bomb": (
        lambda: make_zip(_with(good_files(), **{"JPEGImages/bomb.jpg": b"\0" * (40 * 1024**2)})),
        "zip bomb",
    ),
    "not a zip": (lambda: b"this is a text file, not a zip", "not a readable zip"),
    "truncated zip": (lambda: make_zip(good_files())[:-30], "not a readable zip"),
    "empty zip": (lambda: make_zip({}), "is empty"),
    "only folders": (lambda: make_zip({"Annotations/": b"", "JPEGImages/": b""}), "is empty"),
    "encrypted": (lambda: make_zip(good_files(), encrypted=("JPEGImages/img0.jpg",)), "password"),
    "billion laughs": (
        lambda: make_zip(_with(good_files(), **{"Annotations/img0.xml": BILLION_LAUGHS})),
        "DTD, entities",
    ),
    "external entity": (
        lambda: make_zip(_with(good_files(), **{"Annotations/img1.xml": EXTERNAL_ENTITY})),
        "DTD, entities",
    ),
    "no Annotations folder": (
        lambda: make_zip({k: v for k, v in good_files().items() if k.startswith("JPEG")}),
        "no Annotations/ folder",
    ),
    "no JPEGImages folder": (
        lambda: make_zip({k: v for k, v in good_files().items() if k.startswith("Anno")}),
        "no JPEGImages/ folder",
    ),
    "zipped the parent of two datasets": (
        lambda: make_zip({**good_files(prefix="a/"), **good_files(prefix="b/")}),
        "not their parent",
    ),
    "loose photos without labels": (
        lambda: make_zip({"img0.jpg": image_bytes(), "notes.txt": b"x"}),
        "FieldLens reads Pascal VOC",
    ),
    "zip slip inside train/": (
        lambda: make_zip(_with(exports.roboflow_voc(PS_FILES), **{"train/../../evil.jpg": b"x"})),
        "climbs out",
    ),
    "symlink inside valid/": (
        lambda: make_zip(_with(exports.roboflow_voc(PS_FILES)), symlinks={"valid/x.jpg": "/etc/passwd"}),
        "symbolic link",
    ),
    "bomb inside a COCO json": (
        lambda: make_zip(
            _with(exports.roboflow_coco(PS_FILES), **{"train/_annotations.coco.json": b" " * (40 * 1024**2)})
        ),
        "zip bomb",
    ),
    "COCO json too large to read": (
        lambda: make_zip(
            _with(
                exports.roboflow_coco(PS_FILES), **{"train/_annotations.coco.json": os.urandom(65 * 1024**2)}
            ),
            compression=zipfile.ZIP_STORED,
        ),
        "too large for a COCO annotation file",
    ),
    "COCO json that is not JSON": (
        lambda: make_zip(
            _with(exports.roboflow_coco(PS_FILES), **{"train/_annotations.coco.json": b"{nope"})
        ),
        "not valid JSON",
    ),
    "COCO file name climbing out": (
        lambda: make_zip(
            _with(
                exports.roboflow_coco(PS_FILES),
                **{"valid/_annotations.coco.json": _coco_naming("../../etc/passwd")},
            )
        ),
        "climbs out",
    ),
    "COCO boxes for photos not in the zip": (
        lambda: make_zip(
            {"train/_annotations.coco.json": _coco_naming("gone.jpg"), "train/other.png": image_bytes()}
        ),
        "No usable image",
    ),
    "data.yaml with an absolute path": (
        lambda: make_zip(
            _with(exports.yolo(PS_FILES), **{"data.yaml": b"train: /etc\nval: /etc/ssh\nnames: [a]\n"})
        ),
        "outside the zip",
    ),
    "data.yaml climbing out": (
        lambda: make_zip(
            _with(
                exports.yolo(PS_FILES), **{"data.yaml": b"train: ../../../../root/.ssh\nval: x\nnames: [a]\n"}
            )
        ),
        "outside the zip",
    ),
    "data.yaml with a python tag": (
        lambda: make_zip(
            _with(exports.yolo(PS_FILES), **{"data.yaml": b"names: !!python/object/apply:os.system ['id']\n"})
        ),
        "tags and other special YAML are refused",
    ),
    "YOLO labels without data.yaml": (
        lambda: make_zip({k: v for k, v in _with(exports.yolo(PS_FILES)).items() if k != "data.yaml"}),
        "no data.yaml",
    ),
    "nothing pairs": (
        lambda: make_zip({"JPEGImages/a.jpg": image_bytes(), "Annotations/b.xml": voc_xml()}),
        "No usable image",
    ),
    "no boxes at all": (
        lambda: make_zip({"JPEGImages/a.jpg": image_bytes(), "Annotations/a.xml": voc_xml(objects=[])}),
        "has a box",
    ),
    "damaged deflate data in a photo": (
        lambda: _damaged(make_zip(good_files()), "JPEGImages/img1.jpg"),
        "damaged inside the zip",
    ),
    "damaged stored data in an annotation": (
        lambda: _damaged(make_zip(good_files(), compression=zipfile.ZIP_STORED), "Annotations/img2.xml"),
        "damaged inside the zip",
    ),
    "local header naming another file": (
        lambda: _damaged(make_zip(good_files()), "JPEGImages/img0.jpg", local_offset=30 + 3),
        "damaged inside the zip",
    ),
    "every image corrupt": (
        lambda: make_zip({"JPEGImages/a.jpg": b"\xff\xd8garbage", "Annotations/a.xml": voc_xml()}),
        "No usable image",
    ),
}


def _state(services: Services) -> tuple[int, int, int, set[str]]:
    db = services.db
    return (
        db["datasets"].count,
        db["images"].count,
        db["boxes"].count,
        services.blobs.all_digests(),
    )


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_or_broken_zip_is_refused_and_leaves_nothing(services: Services, case: str) -> None:
    make, message = CASES[case]
    services.datasets.add("local", "existing", make_zip(good_files(2, prefix="")))
    before = _state(services)
    with pytest.raises(UserError) as err:
        services.datasets.add("local", "attempt", make())
    assert message in str(err.value)
    assert _state(services) == before
    assert [d.name for d in services.datasets.list_team("local")] == ["existing"]


def test_too_many_files_is_refused(services: Services) -> None:
    services.datasets.limits = type(services.datasets.limits)(max_files=4)
    with pytest.raises(UserError, match="holds 6 files; the limit is 4"):
        services.datasets.add("local", "big", make_zip(good_files(3)))
    assert _state(services) == (0, 0, 0, set())


def test_total_size_over_the_limit_is_refused(services: Services) -> None:
    services.datasets.limits = type(services.datasets.limits)(max_total_bytes=2000)
    with pytest.raises(UserError, match=r"unpacks to .* the limit is"):
        services.datasets.add("local", "big", make_zip(good_files(3)))
    assert _state(services) == (0, 0, 0, set())


def test_member_larger_than_declared_is_caught(services: Services) -> None:
    """A zip whose directory under-declares a member's size cannot smuggle extra bytes."""
    data = make_zip(good_files(1), compression=zipfile.ZIP_STORED)
    real = zipfile.ZipFile(io.BytesIO(data)).getinfo("JPEGImages/img0.jpg").file_size
    forged = patch_central_directory(data, "JPEGImages/img0.jpg", 24, (real - 100).to_bytes(4, "little"))
    with pytest.raises(UserError):
        services.datasets.add("local", "liar", forged)
    assert _state(services) == (0, 0, 0, set())
