"""The validation split FieldLens draws: whole groups of near copies, stratified by label.

Competition footage comes as runs of frames, one task after another (robosub_transdec: the red
buoys, then the gate, then the torpedo board). A draw of whole runs that ignores labels can leave
most labels out of validation; the stratified draw must not, and must still keep every run whole.
"""

from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import dataclass

import pytest
from PIL import Image, ImageDraw

from storage.domain import Box, Split
from storage.services import Services
from storage.voc.lint import validation_advice
from storage.voc.split import plan_splits
from tests.vocdata import make_zip, voc_xml

RUN = 30  # frames per run of footage; with 600 frames the split keeps runs of up to 30 whole
# (label, runs): unbalanced like real footage; "gate" is a single run, the rest come back later
FOOTAGE = [("ball", 10), ("cone", 4), ("duck", 2), ("gate", 1), ("", 3)]


def _footage() -> tuple[list[str], list[int], list[set[str]]]:
    runs = [label for label, n in FOOTAGE for _ in range(n)]
    random.Random(3).shuffle(runs)  # the tasks are filmed in turn, not all balls first
    names, hashes, labels = [], [], []
    rng = random.Random(7)
    for r, label in enumerate(runs):
        h = rng.getrandbits(64)  # the frames of a run look alike; runs do not
        for f in range(RUN):
            names.append(f"clip_{r * RUN + f:04d}.jpg")
            hashes.append(h)
            labels.append({label} if label else set())
    first_ball = runs.index("ball") * RUN
    labels[first_ball] |= {"key"}  # a rare label: two frames of one run that is mostly balls
    labels[first_ball + 1] |= {"key"}
    return names, hashes, labels


def _frame(run: int, shift: int) -> bytes:
    """A frame of run `run`: the run's scene, moved `shift` pixels (frames of a run are near copies)."""
    rng = random.Random(run)
    img = Image.new("RGB", (96, 72), tuple(rng.choices(range(256), k=3)))
    draw = ImageDraw.Draw(img)
    for _ in range(8):
        x, y = rng.randint(0, 70) + shift // 3, rng.randint(0, 50)
        draw.rectangle(
            (x, y, x + rng.randint(8, 25), y + rng.randint(8, 20)), fill=tuple(rng.choices(range(256), k=3))
        )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _runs(names: list[str]) -> list[int]:
    return [int(n[5:9]) // RUN for n in names]


@pytest.mark.parametrize("seed", [0, 1, 1234])
def test_every_label_filmed_in_more_than_one_run_is_in_validation_and_no_run_is_cut(seed: int) -> None:
    names, hashes, labels = _footage()
    plan = plan_splits(names, hashes, [None] * len(names), 0.2, seed, labels=labels)
    sides: dict[int, set[Split]] = {}
    for run, split in zip(_runs(names), plan.splits, strict=True):
        sides.setdefault(run, set()).add(split)
    assert all(len(s) == 1 for s in sides.values()), "a run of frames straddles training and validation"
    val = Counter(
        lbl or "(none)"
        for ls, s in zip(labels, plan.splits, strict=True)
        if s is Split.VAL
        for lbl in ls or {""}
    )
    total = Counter(lbl or "(none)" for ls in labels for lbl in ls or {""})
    for label in ("ball", "cone", "duck", "(none)"):
        assert 0 < val[label] <= total[label] / 2, (label, val[label], total[label])
    assert val["gate"] == 0, "a label filmed in one run only must stay in training, or nothing learns it"
    assert val["key"] == 0, "the run holding every photo of a rare label stays in training"
    assert 0.15 <= plan.splits.count(Split.VAL) / len(names) <= 0.3
    assert "about as much of every label" in plan.note


def test_a_draw_that_ignores_labels_misses_some_of_this_footage() -> None:
    """Why the draw is stratified: the same footage drawn run by run without looking at the labels."""
    names, hashes, labels = _footage()
    missed = 0
    for seed in range(10):
        plan = plan_splits(names, hashes, [None] * len(names), 0.2, seed)
        seen = {lbl for ls, s in zip(labels, plan.splits, strict=True) if s is Split.VAL for lbl in ls}
        missed += not {"ball", "cone", "duck"} <= seen
    assert missed > 0


def test_the_stratified_draw_is_the_same_for_the_same_input_in_any_order() -> None:
    names, hashes, labels = _footage()
    a = plan_splits(names, hashes, [None] * len(names), 0.2, 5, labels=labels)
    b = plan_splits(names[::-1], hashes[::-1], [None] * len(names), 0.2, 5, labels=labels[::-1])
    assert dict(zip(names, a.splits, strict=True)) == dict(zip(names[::-1], b.splits, strict=True))


def test_an_upload_says_which_labels_validation_cannot_measure(services: Services) -> None:
    """Through the real upload: the lint names the label whose photos are all one run of frames."""
    names, _, labels = _footage()
    names, labels = names[::3], labels[::3]  # 200 photos, runs of 10
    files = {}
    for i, (name, ls) in enumerate(zip(names, labels, strict=True)):
        files[f"JPEGImages/{name}"] = _frame(run=i // 10, shift=i % 10)
        objects = [(lbl, 5, 5, 30, 30) for lbl in sorted(ls)]
        files[f"Annotations/{name[:-4]}.xml"] = voc_xml(name, objects=objects)
    report = services.datasets.add("local", "footage", make_zip(files))
    by_split: dict[Split, set[str]] = {}
    for img in services.datasets.images(report.dataset.id):
        by_split.setdefault(img.split, set()).update(b.label for b in img.boxes)
    assert {"ball", "cone", "duck"} <= by_split[Split.VAL]
    assert "gate" in by_split[Split.TRAIN] and "gate" not in by_split[Split.VAL]
    advice = [line for line in report.dataset.lint if "No validation photo shows" in line]
    assert advice == [advice[0]] and "'gate'" in advice[0] and "'ball'" not in advice[0]
    assert "'key'" in advice[0]  # its one photo in this upload stays in training too
    assert "Add photos of 'gate', 'key' from another video or session" in advice[0]


def test_a_pool_too_small_to_stratify_still_gets_validation() -> None:
    """Two photos, each the only one of its label: no stratified choice keeps half of both in training."""
    plan = plan_splits(["a.jpg", "b.jpg"], [1, 2**63], [None, None], 0.2, 0, labels=[{"cone"}, {"ball"}])
    assert sorted(plan.splits) == sorted([Split.TRAIN, Split.VAL])


@dataclass
class _Photo:
    filename: str
    boxes: list[Box]
    sha256: str = ""
    width: int = 64
    height: int = 48


def test_advice_for_an_exports_own_split_and_none_for_a_label_the_test_images_show() -> None:
    photos = [
        _Photo(f"{i}.jpg", [Box(label, 1, 1, 9, 9)])
        for i, label in enumerate(["ball", "ball", "gate", "cone"])
    ]
    splits = [Split.TRAIN, Split.VAL, Split.TRAIN, Split.TEST]
    (advice,) = validation_advice(photos, splits, drawn=False)
    assert "show no 'gate'" in advice and "'cone'" not in advice  # cone is measured on the test photos
    assert "move a few photos of it" in advice and "upload the export without a split" in advice
    assert (
        validation_advice(photos, [Split.TRAIN] * 4, drawn=True) == []
    )  # no validation at all: said elsewhere
