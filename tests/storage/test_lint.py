"""The lint report names each problem and what to do."""

from __future__ import annotations

import hashlib

from storage.domain import Box, ImageRecord, Split
from storage.voc.lint import lint


def _img(
    name: str,
    boxes: list[tuple[str, float, float, float, float]],
    sha: str | None = None,
    size: tuple[int, int] = (640, 480),
) -> ImageRecord:
    return ImageRecord(
        name,
        sha or hashlib.sha256(name.encode()).hexdigest(),
        "JPEG",
        *size,
        Split.TRAIN,
        tuple(Box(lbl, *xy) for lbl, *xy in boxes),
    )


def test_healthy_dataset_gets_no_advice() -> None:
    images = [_img(f"{i}", [("ball", 0, 0, 200, 200), ("goal", 200, 200, 400, 400)]) for i in range(400)]
    images += [_img(f"neg{i}", []) for i in range(20)]
    assert lint(images) == []


def test_each_problem_is_named_with_advice() -> None:
    images = [_img(f"{i}", [("ball", 0, 0, 200, 200)]) for i in range(60)]
    images += [_img("b1", [("Ball", 0, 0, 100, 100)]), _img("tiny", [("ball", 0, 0, 5, 5)])]
    images += [_img("copy", [("ball", 0, 0, 200, 200)], sha=images[0].sha256)]
    text = "\n".join(lint(images))
    assert "'ball' is in 62 images; detectors usually need about 300" in text
    assert "differ only in capitals" in text
    assert "'ball' has 62 boxes but 'Ball' only 1" in text
    assert "1 of 63 boxes shrink below 10 pixels" in text
    assert "1 image is an exact copy of another (copy = 0)" in text
    assert "No image is without objects" in text
