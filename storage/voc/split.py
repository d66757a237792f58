"""Deterministic train/validation split."""

from __future__ import annotations

import random

from storage.domain import Split


def assign_splits(keys: list[str], val_fraction: float, seed: int) -> list[Split]:
    """Split labels for `keys` (e.g. file names), the same for the same keys, fraction and seed.

    With two or more images and a non-zero fraction, at least one image goes to each side.
    """
    n = len(keys)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = sorted(range(n), key=lambda i: keys[i])
    random.Random(seed).shuffle(order)
    val = set(order[:n_val])
    return [Split.VAL if i in val else Split.TRAIN for i in range(n)]
