"""Near-duplicate hashing and grouping: the pieces the leak-free split is built from."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageDraw

from storage.domain import Split
from storage.voc.neardup import NEAR_BITS, dhash_bytes, frame_runs, group_images, near_pairs, original_stem
from storage.voc.split import plan_splits


def _scene(seed: int, shift: int = 0, quality: int = 90, size=(320, 240)) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", size, (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.randint(0, size[0] - 60) + shift, rng.randint(0, size[1] - 60)
        draw.rectangle(
            (x, y, x + rng.randint(20, 60), y + rng.randint(20, 60)), fill=tuple(rng.choices(range(256), k=3))
        )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def test_a_resaved_or_slightly_moved_frame_is_a_near_copy_and_another_scene_is_not() -> None:
    base = dhash_bytes(_scene(1))
    assert _distance(base, dhash_bytes(_scene(1, quality=50))) <= NEAR_BITS
    assert _distance(base, dhash_bytes(_scene(1, shift=2))) <= NEAR_BITS
    assert all(_distance(base, dhash_bytes(_scene(s))) > NEAR_BITS for s in range(2, 8))


def test_near_pairs_finds_exactly_what_brute_force_finds() -> None:
    rng = random.Random(3)
    hashes = [rng.getrandbits(64) for _ in range(400)]
    for i in range(0, 100, 2):  # near copies: flip up to 6 random bits
        h = hashes[i]
        for bit in rng.sample(range(64), rng.randint(0, 6)):
            h ^= 1 << bit
        hashes[i + 1] = h
    brute = sorted(
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if _distance(hashes[i], hashes[j]) <= NEAR_BITS
    )
    assert near_pairs(hashes) == brute
    assert len(brute) >= 50


@pytest.mark.parametrize(
    ("names", "block", "runs"),
    [
        (["clip_001.jpg", "clip_002.jpg", "clip_003.jpg", "other.jpg", "clip_009.jpg"], 10, [[0, 1, 2]]),
        (["a1.jpg", "a2.jpg", "a3.jpg", "a4.jpg", "a5.jpg"], 2, [[0, 1], [2, 3]]),
        (["x/f1.jpg", "y/f2.jpg"], 10, []),  # different folders are different clips
        (
            ["IMG_0042_jpg.rf.0123456789abcdef0123.jpg", "IMG_0043_jpg.rf.fedcba98765432100000.jpg"],
            10,
            [[0, 1]],
        ),
    ],
)
def test_frame_runs(names: list[str], block: int, runs: list[list[int]]) -> None:
    assert frame_runs(names, block) == runs


def test_roboflow_names_are_read_back_to_the_original() -> None:
    assert original_stem("train/IMG_0042_jpg.rf.3f9a0c1e2b4d5f6a7b8c9d0e1f2a3b4c.jpg") == "IMG_0042"


def test_no_group_grows_past_its_limit_and_every_group_lands_on_one_side() -> None:
    names = [f"frame_{i:04d}.jpg" for i in range(200)]  # one long clip
    groups = group_images(names, [0] * 200, max_group=10)
    assert max(groups.members().values(), key=len).__len__() <= 10
    plan = plan_splits(names, [0] * 200, [None] * 200, 0.2, seed=7)
    sides: dict[int, set[Split]] = {}
    for split, group in zip(plan.splits, plan.dup_groups, strict=True):
        if group is not None:
            sides.setdefault(group, set()).add(split)
    assert sides and all(len(s) == 1 for s in sides.values())
    assert 30 <= plan.splits.count(Split.VAL) <= 50


def test_the_same_input_gives_the_same_split() -> None:
    names = [f"img{i}.jpg" for i in range(50)]
    a = plan_splits(names, [0] * 50, [None] * 50, 0.2, seed=1)
    b = plan_splits(list(reversed(names)), [0] * 50, [None] * 50, 0.2, seed=1)
    assert dict(zip(names, a.splits, strict=True)) == dict(zip(reversed(names), b.splits, strict=True))
