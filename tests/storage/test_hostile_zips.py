"""A corpus of hostile and broken zips: each refused with its own message, nothing stored."""

from __future__ import annotations

import io
import zipfile

import pytest

from storage.errors import UserError
from storage.services import Services
from tests.vocdata import good_files, image_bytes, make_zip, patch_central_directory, voc_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><object><name>&lol2;</name></object></annotation>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""


def _with(files: dict[str, bytes], **extra: bytes) -> dict[str, bytes]:
    return {**files, **extra}


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
    "loose files": (lambda: make_zip({"img0.jpg": image_bytes(), "img0.xml": voc_xml()}), "loose files"),
    "nothing pairs": (
        lambda: make_zip({"JPEGImages/a.jpg": image_bytes(), "Annotations/b.xml": voc_xml()}),
        "No usable image",
    ),
    "no boxes at all": (
        lambda: make_zip({"JPEGImages/a.jpg": image_bytes(), "Annotations/a.xml": voc_xml(objects=[])}),
        "has a box",
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
