"""Train / validation / test splits: the export's when it has one, else drawn without leaks.

When FieldLens draws the split, near copies and neighbouring video frames (see `neardup`) go to
the same side, so validation scores say how the model does on pictures it has not seen.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from storage.domain import Split
from storage.voc.findings import plural
from storage.voc.neardup import Groups, group_images


@dataclass(frozen=True, slots=True)
class SplitPlan:
    splits: list[Split]
    dup_groups: list[int | None]  # the near-copy group of each image, None when it has no near copy
    note: str  # in words: which split came from the export and which FieldLens drew
    # Validation/test images of the export's own split that are near copies of a training image
    # (a split FieldLens drew keeps near copies together; the note says where chains were cut).
    leaks: dict[Split, int]
    drawn: bool = False  # FieldLens drew the validation images (else they came from the export)


def _groups(filenames: Sequence[str], hashes: Sequence[int], val_fraction: float) -> Groups:
    max_group = max(1, math.ceil(len(filenames) * max(val_fraction, 0.05) / 4))
    return group_images(filenames, hashes, max_group)


def _draw(
    pool: list[int],
    groups: Groups,
    val_fraction: float,
    seed: int,
    names: Sequence[str],
    labels: Sequence[Collection[str]] | None = None,
) -> set[int]:
    """Indices of `pool` drawn for validation, whole groups at a time, the same for the same input.

    With `labels` (the labels in each image) the draw is stratified: the groups holding the rarest
    labels are placed first, and a group goes to validation when that brings every label's share of
    validation images, and the number of validation images, closer to `val_fraction`. Competition
    footage comes as long runs of frames, one task after another; a plain draw of a few runs can
    leave most labels out of validation, and their accuracy unmeasured.
    """
    if val_fraction <= 0 or len(pool) < 2:
        return set()
    target = min(max(round(len(pool) * val_fraction), 1), len(pool) - 1)
    in_pool: dict[int, list[int]] = {}
    for i in pool:
        in_pool.setdefault(groups.of[i], []).append(i)
    order = sorted(in_pool.values(), key=lambda members: min(names[i] for i in members))
    random.Random(seed).shuffle(order)
    # A split too small to stratify (every photo the only one of its label, say) is drawn plainly
    # rather than left without validation.
    stratified = set() if labels is None else _stratified(order, labels, val_fraction, target, len(pool))
    return stratified or _plain(order, target, len(pool))


def _plain(order: list[list[int]], target: int, pool_size: int) -> set[int]:
    """Whole groups in the seeded order until `target` images, leaving training at least one."""
    val: set[int] = set()
    for members in order:
        if len(val) >= target:
            break
        if len(val) + len(members) <= pool_size - 1:
            val.update(members)
    return val


def _stratified(
    order: list[list[int]], labels: Sequence[Collection[str]], fraction: float, target: int, pool_size: int
) -> set[int]:
    totals: Counter[str] = Counter()
    in_group: list[Counter[str]] = []
    for members in order:
        c: Counter[str] = Counter()
        for i in members:
            c.update(set(labels[i]) or {""})  # photos without objects are a stratum of their own
        in_group.append(c)
        totals.update(c)
    want = {label: fraction * n for label, n in totals.items()}
    scale = {label: max(w, 1.0) for label, w in want.items()}  # relative error; 1 image for the rarest
    weight_images = max(len(totals), 1)  # the image count weighs as much as all the labels together
    # Rarest label first (ties keep the seeded order): their few groups are placed while there is room.
    rank = sorted(range(len(order)), key=lambda g: min(totals[lbl] for lbl in in_group[g]))
    have: Counter[str] = Counter()
    val: set[int] = set()
    for g in rank:
        members = order[g]
        if len(val) + len(members) > pool_size - 1 or any(
            label
            and (
                2 * (have[label] + n) > totals[label] or (have[label] and have[label] + n > 1.5 * want[label])
            )
            for label, n in in_group[g].items()
        ):
            # Training keeps at least half of every label's images; only a label's first group may
            # take it past 1.5x its share (photos without objects are free to go).
            continue
        gain = weight_images * (
            ((len(val) - target) / target) ** 2 - ((len(val) + len(members) - target) / target) ** 2
        )
        for label, n in sorted(in_group[g].items()):  # one order, whatever the hash seed
            gain += ((have[label] - want[label]) ** 2 - (have[label] + n - want[label]) ** 2) / scale[
                label
            ] ** 2
        if gain > 0:
            val.update(members)
            have.update(in_group[g])
    return val


def leaks(splits: Sequence[Split], groups: Groups) -> dict[Split, int]:
    """Validation and test images with a near copy (by hash) in training."""
    leaked: dict[Split, set[int]] = {Split.VAL: set(), Split.TEST: set()}
    for a, b in groups.pairs:
        for x, y in ((a, b), (b, a)):
            if splits[x] is not Split.TRAIN and splits[y] is Split.TRAIN:
                leaked[splits[x]].add(x)
    return {s: len(v) for s, v in leaked.items()}


def _counts(splits: Sequence[Split]) -> str:
    c = Counter(splits)
    parts = [f"{c[Split.TRAIN]:,} training", f"{c[Split.VAL]:,} validation"]
    if c[Split.TEST]:
        parts.append(f"{c[Split.TEST]:,} test")
    return ", ".join(parts) + " images"


def _dup_groups(groups: Groups) -> list[int | None]:
    sizes = Counter(groups.of)
    return [g if sizes[g] > 1 else None for g in groups.of]


def plan_splits(
    filenames: Sequence[str],
    hashes: Sequence[int],
    hints: Sequence[Split | None],
    val_fraction: float,
    seed: int,
    export_source: str = "",
    labels: Sequence[Collection[str]] | None = None,
) -> SplitPlan:
    """Final splits for images with the export's `hints` (None: the export says nothing for it).

    `labels`, the labels in each image, stratify the validation FieldLens draws (see `_draw`)."""
    groups = _groups(filenames, hashes, val_fraction)
    has = set(hints)
    splits = [h or Split.TRAIN for h in hints]
    kept = "" if has == {None} else export_source or "the export"
    from_export = {Split.TEST} & has
    if Split.VAL in has and Split.TRAIN in has:
        from_export.add(Split.VAL)
        note = f"Split kept from the export ({kept}): {_counts(splits)}."
    else:
        # Draw validation from the images the export put in training (or left undecided).
        pool = [i for i, h in enumerate(hints) if h is not Split.TEST]
        for i in pool:
            splits[i] = Split.TRAIN
        for i in _draw(pool, groups, val_fraction, seed, filenames, labels):
            splits[i] = Split.VAL
        together = sum(1 for g in Counter(groups.of[i] for i in pool).values() if g > 1)
        how = (
            f"drawn by FieldLens ({round(val_fraction * 100)}% of the photos, seeded"
            + (", about as much of every label" if labels is not None else "")
            + "), keeping "
            f"{plural(together, 'group')} of near-identical photos or neighbouring frames on one side"
        )
        if kept and Split.TEST in has:
            note = f"Test images kept from the export ({kept}); validation {how}: {_counts(splits)}."
        elif kept:
            missing = "validation" if Split.VAL not in has else "training"
            note = f"The export's split ({kept}) has no {missing} images, so validation was {how}: "
            note += f"{_counts(splits)}."
        else:
            note = f"Split {how}: {_counts(splits)}."
        if groups.cut:
            note += (
                f" {plural(groups.cut, 'chain')} of similar photos {'was' if groups.cut == 1 else 'were'} "
                "too long to keep whole and cut in file-name order."
            )
    found = leaks(splits, groups)
    return SplitPlan(
        splits,
        _dup_groups(groups),
        note,
        {s: n for s, n in found.items() if s in from_export},
        drawn=Split.VAL not in from_export,
    )


def regroup(filenames: Sequence[str], hashes: Sequence[int], splits: Sequence[Split]) -> SplitPlan:
    """Groups and leaks for images whose splits are already fixed (a combined dataset)."""
    groups = _groups(filenames, hashes, 0.2)
    return SplitPlan(
        list(splits), _dup_groups(groups), "Each image kept the split it had.", leaks(splits, groups)
    )
