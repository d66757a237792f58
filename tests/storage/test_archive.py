"""Reading a zip's members: the bytes zipfile reads, from a path or from bytes, on several threads."""

from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage.voc.archive import Limits, open_archive
from tests.vocdata import good_files, make_zip


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
@pytest.mark.parametrize("from_path", [True, False], ids=["path", "bytes"])
def test_members_read_back_byte_for_byte(tmp_path: Path, compression: int, from_path: bool) -> None:
    files = {**good_files(8), "empty.txt": b"", "notes/ünïcödé.txt": "é".encode() * 1000}
    data = make_zip(files, compression=compression)
    (tmp_path / "d.zip").write_bytes(data)
    archive = open_archive(tmp_path / "d.zip" if from_path else data, Limits())
    try:
        with ThreadPoolExecutor(4) as pool:
            read = dict(zip(files, pool.map(archive.read, files), strict=True))
    finally:
        archive.close()
    assert read == files
