"""Helpers that build VOC files and zips (good, broken and hostile) inside the tests."""

from __future__ import annotations

import io
import stat
import zipfile

from PIL import Image


def image_bytes(
    w: int = 64, h: int = 48, fmt: str = "JPEG", colour=(200, 30, 30), mode: str = "RGB"
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), colour if mode == "RGB" else 128).save(buf, fmt)
    return buf.getvalue()


def voc_xml(
    filename: str | None = "a.jpg",
    size: tuple[int, int] | None = (64, 48),
    objects: list[tuple[str, float, float, float, float]] = (("ball", 5, 5, 30, 30),),
    extra: str = "",
) -> bytes:
    parts = ["<annotation>"]
    if filename is not None:
        parts.append(f"<filename>{filename}</filename>")
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, x0, y0, x1, y1 in objects:
        parts.append(
            f"<object><name>{name}</name>{extra}<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "".join(parts).encode()


def good_files(n: int = 3, prefix: str = "") -> dict[str, bytes]:
    files = {}
    for i in range(n):
        files[f"{prefix}JPEGImages/img{i}.jpg"] = image_bytes(colour=(10 * i, 100, 50))
        files[f"{prefix}Annotations/img{i}.xml"] = voc_xml(f"img{i}.jpg")
    return files


def patch_central_directory(data: bytes, name: str, offset: int, value: bytes) -> bytes:
    """Overwrite bytes at `offset` of `name`'s central directory record (to forge a header field)."""
    out = bytearray(data)
    idx = out.find(b"PK\x01\x02")
    while idx != -1:
        name_len = int.from_bytes(out[idx + 28 : idx + 30], "little")
        if out[idx + 46 : idx + 46 + name_len] == name.encode():
            out[idx + offset : idx + offset + len(value)] = value
            return bytes(out)
        idx = out.find(b"PK\x01\x02", idx + 1)
    raise KeyError(name)


def make_zip(
    files: dict[str, bytes],
    symlinks: dict[str, str] | None = None,
    encrypted: tuple[str, ...] = (),
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    data = buf.getvalue()
    for name in encrypted:  # zipfile cannot write encrypted members: set the flag bit by hand
        data = patch_central_directory(data, name, 8, b"\x01\x00")
    return data
