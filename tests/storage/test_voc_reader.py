"""Real-world VOC quirks are accepted and reported, never crashed on or dropped silently."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from storage.errors import UserError
from storage.services import Services
from tests.vocdata import good_files, image_bytes, make_zip, voc_xml


def _add(services: Services, files: dict[str, bytes], name: str = "ds"):
    return services.datasets.add("local", name, make_zip(files))


def _warning(report, fragment: str) -> str:
    matches = [w for w in report.dataset.warnings if fragment in w]
    assert matches, f"no warning containing {fragment!r} in {report.dataset.warnings}"
    return matches[0]


def test_float_coordinates_missing_size_and_filename_and_flags_are_read(services: Services) -> None:
    files = {
        "JPEGImages/a.jpg": image_bytes(100, 80),
        "Annotations/a.xml": voc_xml(
            None,
            None,
            [("ball", 10.5, 20.25, 50.75, 60.0)],
            extra="<difficult>1</difficult><truncated>1</truncated>",
        ),
    }
    report = _add(services, files)
    images = services.datasets.images(report.dataset.id)
    (box,) = images[0].boxes
    assert (box.xmin, box.ymin, box.xmax, box.ymax) == (10.5, 20.25, 50.75, 60.0)
    assert box.difficult and box.truncated
    assert (images[0].width, images[0].height) == (100, 80)
    assert report.dataset.warnings == []


def test_negative_image_is_kept(services: Services) -> None:
    files = good_files(2)
    files["JPEGImages/empty.jpg"] = image_bytes()
    files["Annotations/empty.xml"] = voc_xml("empty.jpg", objects=[])
    report = _add(services, files)
    assert report.dataset.image_count == 3
    assert report.negative_images == 1


def test_png_named_jpg_is_read_by_its_real_format(services: Services) -> None:
    files = good_files(1)
    files["JPEGImages/img0.jpg"] = image_bytes(fmt="PNG")
    report = _add(services, files)
    assert services.datasets.images(report.dataset.id)[0].format == "PNG"
    assert "img0.jpg is PNG" in _warning(report, "does not match the real format")


@pytest.mark.parametrize(
    ("box", "kept", "fragment"),
    [
        ((-5, -5, 30, 30), (0, 0, 30, 30), "1 box went outside the image and was clipped"),
        ((10, 10, 500, 40), (10, 10, 64, 40), "was clipped"),
        ((30, 10, 20, 40), None, "1 box had zero or negative width or height and was dropped"),
        ((10, 10, 10, 40), None, "was dropped"),
        ((70, 10, 90, 40), None, "was dropped"),  # entirely outside: nothing left after clipping
    ],
)
def test_boxes_are_clipped_or_dropped_and_counted(services: Services, box, kept, fragment) -> None:
    files = good_files(1)
    files["Annotations/img0.xml"] = voc_xml("img0.jpg", objects=[("ball", *box), ("ball", 1, 1, 20, 20)])
    report = _add(services, files)
    boxes = services.datasets.images(report.dataset.id)[0].boxes
    _warning(report, fragment)
    if kept is None:
        assert len(boxes) == 1
    else:
        assert (boxes[0].xmin, boxes[0].ymin, boxes[0].xmax, boxes[0].ymax) == kept


def test_unpaired_files_are_counted_and_named(services: Services) -> None:
    files = good_files(2)
    files["JPEGImages/lonely.jpg"] = image_bytes()
    files["Annotations/orphan.xml"] = voc_xml("orphan.jpg")
    report = _add(services, files)
    assert report.dataset.image_count == 2
    assert "lonely.jpg" in _warning(report, "1 image had no annotation file")
    assert "orphan.xml" in _warning(report, "1 annotation had no matching image")


def test_corrupt_image_and_malformed_xml_are_skipped_by_name(services: Services) -> None:
    files = good_files(3)
    files["JPEGImages/img1.jpg"] = b"\xff\xd8\xff\xe0 not really a jpeg"
    files["Annotations/img2.xml"] = b"<annotation><object>"
    report = _add(services, files)
    assert report.dataset.image_count == 1
    assert "img1.jpg" in _warning(report, "could not be read as an image")
    assert "img2.xml" in _warning(report, "could not be read and their images were skipped")


def test_unsupported_format_is_named(services: Services) -> None:
    files = good_files(1)
    files["JPEGImages/anim.gif"] = image_bytes(fmt="GIF", mode="P")
    files["Annotations/anim.xml"] = voc_xml("anim.gif")
    report = _add(services, files)
    assert "anim.gif (GIF)" in _warning(report, "in a format FieldLens does not read")


def test_wrapping_folder_is_accepted_with_a_warning(services: Services) -> None:
    report = _add(services, good_files(2, prefix="my_dataset/"))
    assert report.dataset.image_count == 2
    assert "my_dataset" in _warning(report, "wrapping folder")


def test_mac_junk_is_ignored_and_other_files_are_named(services: Services) -> None:
    files = good_files(2)
    files["__MACOSX/JPEGImages/._img0.jpg"] = b"junk"
    files["JPEGImages/.DS_Store"] = b"junk"
    files["README.txt"] = b"hello"
    report = _add(services, files)
    assert report.dataset.image_count == 2
    assert "README.txt" in _warning(report, "not part of the dataset")
    assert not any("MACOSX" in w or "DS_Store" in w for w in report.dataset.warnings)


def test_stated_size_that_differs_from_the_image_is_reported(services: Services) -> None:
    files = good_files(1)
    files["Annotations/img0.xml"] = voc_xml("img0.jpg", size=(640, 480))
    report = _add(services, files)
    _warning(report, "states an image size that differs")


def test_truncated_jpeg_is_kept_with_a_warning(services: Services) -> None:
    files = good_files(2)
    files["JPEGImages/img1.jpg"] = image_bytes(200, 150)[:-200]
    report = _add(services, files)
    assert report.dataset.image_count == 2
    assert "img1.jpg" in _warning(report, "cut short")


def test_a_truncated_jpeg_has_the_near_duplicate_hash_of_what_decodes(services: Services) -> None:
    """Whatever else the process imported (the previews' modules also let Pillow read short files)."""
    buf = io.BytesIO()
    Image.linear_gradient("L").rotate(90).resize((200, 150)).convert("RGB").save(buf, "JPEG")
    files = good_files(1)
    files["JPEGImages/img0.jpg"] = buf.getvalue()[:-300]
    report = _add(services, files)
    assert "img0.jpg" in _warning(report, "cut short")
    assert services.datasets.images(report.dataset.id)[0].phash != 0


def test_grayscale_images_are_noted(services: Services) -> None:
    files = good_files(1)
    files["JPEGImages/img0.jpg"] = image_bytes(mode="L")
    report = _add(services, files)
    assert "img0.jpg (L)" in _warning(report, "not plain RGB")


def test_object_without_name_or_coordinates_is_dropped_and_counted(services: Services) -> None:
    files = good_files(1)
    files["Annotations/img0.xml"] = (
        b"<annotation><object><name>ball</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax>"
        b"<ymax>20</ymax></bndbox></object><object><name>ball</name><bndbox><xmin>one</xmin></bndbox>"
        b"</object><object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
        b"</object></annotation>"
    )
    report = _add(services, files)
    assert report.dataset.box_count == 1
    _warning(report, "2 boxes had no label or no numeric coordinates")


def test_folder_ingest_matches_zip_ingest(services: Services, tmp_path) -> None:
    for name, data in good_files(3).items():
        (tmp_path / "ds" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / name).write_bytes(data)
    report = services.datasets.add("local", "from-folder", tmp_path / "ds")
    assert (report.dataset.image_count, report.dataset.box_count) == (3, 3)


def test_symlink_in_a_folder_is_refused(services: Services, tmp_path) -> None:
    for name, data in good_files(2).items():
        (tmp_path / "ds" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / name).write_bytes(data)
    (tmp_path / "ds" / "JPEGImages" / "evil.jpg").symlink_to("/etc/passwd")
    with pytest.raises(UserError, match="symbolic link"):
        services.datasets.add("local", "links", tmp_path / "ds")
    assert services.db["images"].count == 0
