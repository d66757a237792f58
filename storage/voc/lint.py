"""A lint report in plain language for a team that has never trained a model.

Each finding names the problem and what to do about it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from storage.domain import Box, Split

IMAGES_PER_LABEL = 300  # the field's rule of thumb for a reliable detector
SMALL_BOX_PX = 10  # at the model input
MODEL_INPUT = 320
IMBALANCE_RATIO = 5


class HasBoxes(Protocol):
    @property
    def filename(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def boxes(self) -> Sequence[Box]: ...


@dataclass(frozen=True, slots=True)
class LabelStats:
    label: str
    images: int
    boxes: int


def label_stats(images: Sequence[HasBoxes]) -> list[LabelStats]:
    """Images and boxes per label, most boxes first."""
    boxes: Counter[str] = Counter()
    per_image: dict[str, set[str]] = defaultdict(set)
    for img in images:
        for b in img.boxes:
            boxes[b.label] += 1
            per_image[b.label].add(img.sha256 + img.filename)
    return [LabelStats(lbl, len(per_image[lbl]), n) for lbl, n in boxes.most_common()]


def lint(images: Sequence[HasBoxes]) -> list[str]:
    stats = label_stats(images)
    out: list[str] = []
    n_images = len(images)
    if n_images < 50:
        out.append(
            f"The dataset has only {n_images} images. A first model can learn from it, but expect it to "
            "miss objects; aim for a few hundred photos per label."
        )
    for s in stats:
        if s.images < IMAGES_PER_LABEL:
            out.append(
                f"'{s.label}' is in {s.images} images; detectors usually need about {IMAGES_PER_LABEL} "
                f"per label. Take more photos of {s.label} from other angles, distances and lighting."
            )
    by_fold: dict[str, list[str]] = defaultdict(list)
    for s in stats:
        by_fold[s.label.strip().lower()].append(s.label)
    for names in by_fold.values():
        if len(names) > 1:
            out.append(
                f"Labels {', '.join(repr(n) for n in sorted(names))} differ only in capitals or spaces, "
                "so the model treats them as different things. Rename them to one spelling."
            )
    if len(stats) > 1 and stats[-1].boxes * IMBALANCE_RATIO <= stats[0].boxes:
        top, low = stats[0], stats[-1]
        out.append(
            f"'{top.label}' has {top.boxes} boxes but '{low.label}' only {low.boxes}: the model will favour "
            f"'{top.label}'. Add examples of '{low.label}' until the counts are within about "
            f"{IMBALANCE_RATIO}x."
        )
    total_boxes = sum(s.boxes for s in stats)
    small = sum(
        1
        for img in images
        for b in img.boxes
        if min(b.width * MODEL_INPUT / img.width, b.height * MODEL_INPUT / img.height) < SMALL_BOX_PX
    )
    if small:
        out.append(
            f"{small} of {total_boxes} boxes shrink below {SMALL_BOX_PX} pixels at the model's "
            f"{MODEL_INPUT}x{MODEL_INPUT} input, too small to be found reliably. Photograph those objects "
            "from closer, or crop the photos around them."
        )
    seen: dict[str, str] = {}
    dupes = []
    for img in images:
        if img.sha256 in seen:
            dupes.append(f"{img.filename} = {seen[img.sha256]}")
        else:
            seen[img.sha256] = img.filename
    if dupes:
        more = ", ..." if len(dupes) > 3 else ""
        what = "image is an exact copy" if len(dupes) == 1 else "images are exact copies"
        out.append(
            f"{len(dupes)} {what} of another ({', '.join(dupes[:3])}{more}). Copies can "
            "land in both training and validation and make scores look better than they are: remove them."
        )
    negatives = sum(1 for img in images if not img.boxes)
    if n_images and negatives == 0:
        out.append(
            "No image is without objects. A few photos of the field with none of your objects in view "
            "teach the model not to see things that are not there."
        )
    elif n_images and negatives * 2 > n_images:
        out.append(
            f"{negatives} of {n_images} images have no boxes. If objects in them were not labelled, the "
            "model learns to ignore them: check those images in your labelling tool."
        )
    return out


def leak_advice(leaks: Mapping[Split, int]) -> list[str]:
    """Advice when validation or test images are near copies of training images."""
    out = []
    for split, what in ((Split.VAL, "validation"), (Split.TEST, "test")):
        n = leaks.get(split, 0)
        if n:
            are = "image is a near copy" if n == 1 else "images are near copies"
            out.append(
                f"{n} {what} {are} of training images (frames of the same video, or the same shot "
                "twice); scores on them will look better than the robot will do. Split by video or "
                "session in your labelling tool, or upload the export without its split and FieldLens "
                "will keep near copies on one side."
            )
    return out


def validation_advice(images: Sequence[HasBoxes], splits: Sequence[Split], drawn: bool) -> list[str]:
    """Advice when some labels have no validation image, so their accuracy goes unmeasured.

    `drawn`: FieldLens drew the validation images (else they are the export's own, or a combined
    dataset's). A label the test images show is measured there and not named."""
    if Split.VAL not in splits:
        return []
    seen: dict[str, set[Split]] = defaultdict(set)
    for img, split in zip(images, splits, strict=True):
        for b in img.boxes:
            seen[b.label].add(split)
    missing = sorted(label for label, sides in seen.items() if not sides & {Split.VAL, Split.TEST})
    if not missing:
        return []
    names = ", ".join(f"'{m}'" for m in missing)
    it = "it" if len(missing) == 1 else "them"
    if drawn:
        return [
            f"No validation photo shows {names}: there are too few photos of {it}, or they are all one "
            f"run of similar frames, so FieldLens kept them for training, and the model's accuracy on "
            f"{it} cannot be measured. Add photos of {names} from another video or session."
        ]
    return [
        f"The validation photos show no {names}, so the model's accuracy on "
        f"{it} cannot be measured. In your labelling tool, move a few photos of {it} from another video "
        "or session to validation, or upload the export without a split and FieldLens will draw one."
    ]
