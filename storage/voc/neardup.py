"""Near-duplicate images: a perceptual hash per image, and groups that must stay on one side of a split.

FTC datasets are mostly frames of a few videos. Two frames a few milliseconds apart are the same
picture to a detector, so one in training and one in validation makes validation scores lie.
Two signals group images:
- a difference hash (dHash) of a 9x8 grey thumbnail: near copies differ in a few of its 64 bits;
- runs of consecutive frame numbers in file names (`clip_0041.jpg`, `clip_0042.jpg`).
"""

from __future__ import annotations

import io
import itertools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from storage.voc import paths

HASH_BITS = 64
NEAR_BITS = 6  # at most this many differing bits: a near copy
_ROBOFLOW_SUFFIX = re.compile(r"_(jpe?g|png|bmp|webp)\.rf\.[0-9a-f]{16,}$", re.IGNORECASE)
_FRAME = re.compile(r"^(.*?)(\d+)$")


def dhash(img: Image.Image) -> int:
    """64-bit difference hash of an image: each bit says whether a pixel is brighter than its right neighbour.

    JPEGs are decoded at 1/8 scale and straight to grey (`draft`): libjpeg then skips the inverse
    DCT of everything but each block's average, about half the cost of a full decode. Bits run row
    by row, left to right, the first one highest.
    """
    img.draft("L", (9, 8))
    grey = img if img.mode == "L" else img.convert("L")  # convert("L") of an "L" image is a copy
    small = grey.resize((9, 8), Image.Resampling.BOX).tobytes()
    bits = 0
    for row in range(0, 72, 9):
        for x in range(row, row + 8):
            bits = bits << 1 | (small[x + 1] > small[x])
    return bits


def dhash_bytes(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as img:
        return dhash(img)


def original_stem(filename: str) -> str:
    """The stem a photo had before an export renamed it (`IMG_0042_jpg.rf.<hash>.jpg` -> `IMG_0042`)."""
    return _ROBOFLOW_SUFFIX.sub("", paths.stem(filename))


ALL_PAIRS_UP_TO = 4096  # hashes; up to this many, one pass over every pair beats blocking


def near_pairs(hashes: Sequence[int]) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose hashes differ in at most NEAR_BITS bits, sorted.

    Up to ALL_PAIRS_UP_TO hashes every pair is compared (8 million XORs at most: milliseconds).
    Above that, pigeonhole blocking: two 64-bit hashes within 6 bits agree on at least one of their
    8 bytes, so only images sharing a byte value at the same position are compared (about n^2 / 32
    pairs, not n^2). Both find exactly the same pairs.
    """
    if len(hashes) < 2:
        return []
    h = np.array(hashes, dtype=np.uint64)
    known = np.flatnonzero(h != 0)  # 0: the pixels could not be decoded, nothing to compare
    if len(known) < 2:
        return []
    if len(known) <= ALL_PAIRS_UP_TO:
        return _close_pairs(h, known)
    pairs: set[tuple[int, int]] = set()
    for byte in range(HASH_BITS // 8):
        key = (h[known] >> np.uint64(8 * byte)) & np.uint64(0xFF)
        order = known[np.argsort(key, kind="stable")]
        bounds = np.flatnonzero(np.diff(np.sort(key, kind="stable"))) + 1
        for bucket in np.split(order, bounds):
            if len(bucket) > 1:
                pairs.update(_close_pairs(h, bucket))
    return sorted(pairs)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _bits_set(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy 2 counts them in one instruction; numpy 1 by byte lookup)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return _POPCOUNT[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1)


def _close_pairs(h: np.ndarray, bucket: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i < j, sorted) within NEAR_BITS among `bucket`'s hashes, a slab of rows at a time.

    Each slab compares its rows with themselves and every later row only (bounded memory).
    """
    x = np.sort(bucket)
    hx = h[x]
    rows = max(1, 262_144 // len(x))  # 2 MB of XORs a slab
    out: list[tuple[int, int]] = []
    for start in range(0, len(x), rows):
        diff = hx[start : start + rows, None] ^ hx[None, start:]
        a, b = np.nonzero(np.triu(_bits_set(diff) <= NEAR_BITS, k=1))
        out.extend(zip(x[start + a].tolist(), x[start + b].tolist(), strict=True))
    return out


def frame_runs(filenames: Sequence[str], block: int) -> list[list[int]]:
    """Runs of consecutive frame numbers with the same name prefix, cut into blocks of at most `block`.

    A whole video is one run; cutting it into blocks keeps a split possible when a dataset is one
    video, at the price of neighbouring frames at the blocks' edges.
    """
    by_prefix: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for i, name in enumerate(filenames):
        m = _FRAME.match(original_stem(name))
        if m:
            by_prefix[(paths.parent(name), m.group(1))].append((int(m.group(2)), i))
    runs: list[list[int]] = []
    for frames in by_prefix.values():
        frames.sort()
        run = [frames[0]]
        for prev, cur in itertools.pairwise(frames):
            if cur[0] - prev[0] <= 1 and len(run) < block:
                run.append(cur)
            else:
                if len(run) > 1:
                    runs.append([i for _, i in run])
                run = [cur]
        if len(run) > 1:
            runs.append([i for _, i in run])
    return runs


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass(frozen=True, slots=True)
class Groups:
    """Images that belong together: `of[i]` is image i's group; singletons have their own group."""

    of: list[int]
    pairs: list[tuple[int, int]]  # near-copy pairs by hash
    cut: int  # groups too large to keep whole, cut in file-name order

    def members(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for i, g in enumerate(self.of):
            out[g].append(i)
        return out


def group_images(filenames: Sequence[str], hashes: Sequence[int], max_group: int) -> Groups:
    """Group near copies (by hash) and neighbouring frames (by name); no group is larger than `max_group`.

    Near copies chain (a slowly panning camera links every frame to the next), so a group larger
    than `max_group` is cut into pieces in file-name order rather than swallowing the dataset.
    """
    n = len(filenames)
    block = max(5, min(50, n // 50))
    uf = _UnionFind(n)
    pairs = near_pairs(hashes)
    for a, b in pairs:
        uf.union(a, b)
    for run in frame_runs(filenames, block):
        for i in run[1:]:
            uf.union(run[0], i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[uf.find(i)].append(i)
    of = [0] * n
    next_id, cut = 0, 0
    for members in sorted(groups.values(), key=lambda m: filenames[m[0]]):
        members.sort(key=lambda i: filenames[i])
        pieces = [members[k : k + max_group] for k in range(0, len(members), max(1, max_group))]
        cut += len(pieces) > 1
        for piece in pieces:
            for i in piece:
                of[i] = next_id
            next_id += 1
    return Groups(of, pairs, cut)
