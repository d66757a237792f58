"""Pieces of archive member names, computed as `PurePosixPath` computes them, with string methods.

Member names are already normalised (`archive.check_name`: '/'-separated, no '', '.' or '..'
parts), so these give the same answers as `PurePosixPath(name).name` and friends at a fraction of
the cost: ingest asks for them several times for each of thousands of files.
"""

from __future__ import annotations


def name(path: str) -> str:
    """The last part: `PurePosixPath(path).name`."""
    return path.rpartition("/")[2]


def parent(path: str) -> str:
    """Everything before the last part: `str(PurePosixPath(path).parent)` ('.' at the top)."""
    return path.rpartition("/")[0] or "."


def suffix(path: str) -> str:
    """The last part's extension with its dot: `PurePosixPath(path).suffix` ('' for `.bashrc`)."""
    base = name(path)
    i = base.rfind(".")
    return base[i:] if 0 < i < len(base) - 1 else ""


def stem(path: str) -> str:
    """The last part without its extension: `PurePosixPath(path).stem`."""
    base = name(path)
    i = base.rfind(".")
    return base[:i] if 0 < i < len(base) - 1 else base


def parts(path: str) -> list[str]:
    """The parts: `list(PurePosixPath(path).parts)` for a relative, normalised name."""
    return path.split("/")
