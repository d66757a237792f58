"""Read a dataset zip (path or bytes) or folder safely, before anything is stored.

All checks on names, sizes and counts happen up front on the zip's directory, so a hostile
archive is refused before a single byte of it is written anywhere.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from storage.errors import BadArchive

# Files that operating systems add to zips; skipped without a warning.
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"^[A-Za-z]:")
# The header before each member's data (zip APPNOTE 4.3.7), and the flag bits that do not change
# how the data reads: deflate level hints, sizes in a trailing descriptor, UTF-8 names.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_PLAIN_FLAGS = 0x2 | 0x4 | 0x8 | 0x800


@dataclass(frozen=True, slots=True)
class Limits:
    max_total_bytes: int = 2 * 1024**3
    max_files: int = 50_000
    max_ratio: int = 200
    max_member_bytes: int = 200 * 1024**2  # one image or XML file

    # Highly compressible small files (XML) may exceed the ratio legitimately.
    ratio_min_bytes: int = 1024**2


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # relative POSIX path inside the archive
    size: int


class Archive(Protocol):
    members: list[Member]
    label: str  # what to call it in messages

    def read(self, name: str) -> bytes: ...

    def close(self) -> None: ...


def _fmt_bytes(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB"


def is_junk(name: str) -> bool:
    """Whether a member (a name `check_name` returned) is a file an operating system added."""
    parts = name.split("/")
    base = parts[-1].lower()
    return parts[0] == "__MACOSX" or base in _JUNK_NAMES or base.startswith("._")


def check_name(name: str) -> str:
    """Return the normalised member name, or refuse names that escape the dataset folder."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise BadArchive(
            f"The zip holds a file with an absolute path ({name!r}), which could overwrite files on "
            "the server. Re-create the zip from the dataset folder itself."
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadArchive(
            f"The zip holds a file whose path climbs out of the dataset folder ({name!r}). This is a "
            "'zip slip' attack pattern; re-create the zip from the dataset folder itself."
        )
    if any("\x00" in p for p in parts):
        raise BadArchive(f"The zip holds a file name with a NUL character ({name!r}). Rename the file.")
    return "/".join(parts)


def _check_totals(members: list[Member], limits: Limits, label: str) -> None:
    if not members:
        raise BadArchive(
            f"{label} is empty. Put the Annotations and JPEGImages folders with your files in it."
        )
    if len(members) > limits.max_files:
        raise BadArchive(
            f"{label} holds {len(members):,} files; the limit is {limits.max_files:,}. "
            "Split the dataset into smaller ones and combine them after upload."
        )
    total = sum(m.size for m in members)
    if total > limits.max_total_bytes:
        raise BadArchive(
            f"{label} unpacks to {_fmt_bytes(total)}; the limit is {_fmt_bytes(limits.max_total_bytes)}. "
            "Resize the photos (1024 px on the long side is plenty) or split the dataset."
        )
    big = next((m for m in members if m.size > limits.max_member_bytes), None)
    if big is not None:
        raise BadArchive(
            f"{big.name} is {_fmt_bytes(big.size)}; one file may be at most "
            f"{_fmt_bytes(limits.max_member_bytes)}. Resize or remove it."
        )


class ZipArchive:
    """A zip file checked for the usual attacks before any member is read."""

    def __init__(self, source: Path | str | bytes, limits: Limits) -> None:
        self.label = "The zip"
        self._limits = limits
        try:
            fileobj = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
        except OSError as e:
            raise BadArchive(f"Cannot open {source!s}: {e.strerror}.") from e
        # Members are read with positioned reads where the platform has them: zipfile's own reads
        # share one file position under a lock, which serialises the reading threads.
        self._source: memoryview | int | None = None  # bytes, or a file descriptor
        if isinstance(source, bytes):
            self._source = memoryview(source)
        elif hasattr(os, "pread"):
            self._source = fileobj.fileno()
        try:
            self._zip = zipfile.ZipFile(fileobj)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
            fileobj.close()
            raise BadArchive(
                "This file is not a readable zip archive. Zip the Annotations and JPEGImages folders "
                "(right-click > Compress, or Send to > Compressed folder) and upload that .zip."
            ) from e
        try:
            self._infos: dict[str, zipfile.ZipInfo] = {}
            self.members = self._check()
        except BaseException:
            self.close()
            raise

    def _check(self) -> list[Member]:
        members = []
        for info in self._zip.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise BadArchive(
                    f"The zip holds a symbolic link ({info.filename!r}). Links can point at files "
                    "outside the dataset, so they are refused; zip the real files instead."
                )
            name = check_name(info.filename)
            if info.is_dir() or not name:
                continue
            if info.flag_bits & 0x1:
                raise BadArchive("The zip is password-protected. Upload a zip made without a password.")
            if name in self._infos:
                raise BadArchive(f"The zip holds two files named {name!r}. Remove one and zip again.")
            if (
                info.file_size > self._limits.ratio_min_bytes
                and info.file_size > self._limits.max_ratio * max(info.compress_size, 1)
            ):
                raise BadArchive(
                    f"{name} compresses {info.file_size // max(info.compress_size, 1):,} to 1, far more "
                    "than photos or annotations do: the zip looks like a zip bomb and was refused."
                )
            self._infos[name] = info
            members.append(Member(name, info.file_size))
        _check_totals(members, self._limits, self.label)
        return members

    def read(self, name: str) -> bytes:
        info = self._infos[name]
        try:
            if (
                self._source is not None
                and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
                and not info.flag_bits & ~_PLAIN_FLAGS
            ):
                data = self._read_plain(info)
            else:
                with self._zip.open(info) as f:
                    # Never trust the declared size: read at most one byte more than it.
                    data = f.read(info.file_size + 1)
        except zipfile.BadZipFile as e:
            raise BadArchive(f"{name} is damaged inside the zip ({e}). Zip the dataset again.") from e
        except (NotImplementedError, RuntimeError) as e:
            raise BadArchive(f"{name} uses an unsupported zip feature ({e}). Zip it again.") from e
        if len(data) > info.file_size:
            raise BadArchive(f"{name} is larger than the zip says: refused as a zip bomb.")
        return data

    def _range(self, offset: int, size: int) -> bytes | memoryview:
        if isinstance(self._source, memoryview):
            return self._source[offset : offset + size]
        assert self._source is not None
        return os.pread(self._source, size, offset)

    def _read_plain(self, info: zipfile.ZipInfo) -> bytes:
        """A stored or deflated member, at most one byte more than declared, checked as zipfile checks
        it (local header, name, length, CRC-32); thread-safe. Raises zipfile.BadZipFile."""
        header = self._range(info.header_offset, _LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or bytes(header[:4]) != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local file header")
        fields = _LOCAL_HEADER.unpack(header)
        flags, name_size, extra_size = fields[3], fields[10], fields[11]
        start = info.header_offset + _LOCAL_HEADER.size
        name = bytes(self._range(start, name_size))
        if len(name) != name_size:
            raise zipfile.BadZipFile("the zip ends inside this file")
        try:
            local_name = name.decode("utf-8" if flags & 0x800 else "cp437")
        except UnicodeDecodeError as e:
            raise zipfile.BadZipFile(f"unreadable file name in the local header ({e})") from e
        if local_name != info.orig_filename:
            raise zipfile.BadZipFile(
                f"name in directory {info.orig_filename!r} and header {local_name!r} differ"
            )
        raw = self._range(start + name_size + extra_size, info.compress_size)
        if len(raw) != info.compress_size:
            raise zipfile.BadZipFile("the zip ends inside this file")
        limit = info.file_size + 1
        if info.compress_type == zipfile.ZIP_DEFLATED:
            try:
                data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, limit)
            except zlib.error as e:
                raise zipfile.BadZipFile(f"bad deflate data ({e})") from e
        else:
            data = bytes(raw[:limit])
        if len(data) < info.file_size:
            raise zipfile.BadZipFile("shorter than the zip says")
        if len(data) == info.file_size and zlib.crc32(data) != info.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.orig_filename!r}")
        return data

    def close(self) -> None:
        fp = self._zip.fp if hasattr(self, "_zip") else None
        if hasattr(self, "_zip"):
            self._zip.close()
        if fp is not None:
            fp.close()


class FolderArchive:
    """A dataset folder on disk; symlinks are refused like in zips."""

    def __init__(self, root: Path, limits: Limits) -> None:
        self.label = f"The folder {root}"
        self.root = Path(root)
        members: list[Member] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            for entry in [*dirnames, *filenames]:
                full = Path(dirpath) / entry
                if full.is_symlink():
                    raise BadArchive(
                        f"{full} is a symbolic link. Links can point outside the dataset, so they are "
                        "refused; copy the real files in."
                    )
            for filename in filenames:
                full = Path(dirpath) / filename
                members.append(Member(full.relative_to(self.root).as_posix(), full.stat().st_size))
                if len(members) > limits.max_files:
                    break
        _check_totals(members, limits, self.label)
        self.members = sorted(members, key=lambda m: m.name)
        self._sizes = {m.name: m.size for m in self.members}

    def read(self, name: str) -> bytes:
        if name not in self._sizes:
            raise KeyError(name)
        return (self.root / name).read_bytes()

    def close(self) -> None:
        pass


def open_archive(source: Path | str | bytes, limits: Limits) -> Archive:
    """A zip (path or bytes) or a folder, checked against `limits`."""
    if isinstance(source, bytes):
        return ZipArchive(source, limits)
    path = Path(source)
    if path.is_dir():
        return FolderArchive(path, limits)
    if not path.exists():
        raise BadArchive(f"{path} does not exist. Check the path to the dataset zip or folder.")
    return ZipArchive(path, limits)
