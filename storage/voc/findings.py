"""Problems found while reading a dataset, counted by kind and rendered as plain sentences.

Nothing is dropped silently: every skip is counted and the first few names go in the warning.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

FIRST_FEW = 5


def plural(n: int, word: str) -> str:
    many = word + "es" if word.endswith(("s", "x")) else word + "s"
    return f"{n:,} {word if n == 1 else many}"


@dataclass(slots=True)
class Findings:
    """Counted problems of one kind, with the first few names for the report."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    names: dict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))  # ordered set

    def add(self, key: str, name: str, n: int = 1) -> None:
        self.counts[key] += n
        self.names[key][name] = None

    def merge(self, other: Findings) -> None:
        for key, n in other.counts.items():
            self.counts[key] += n
            self.names[key].update(other.names[key])

    def first(self, key: str) -> str:
        names = list(self.names[key])
        more = ", ..." if len(names) > FIRST_FEW else ""
        return ", ".join(names[:FIRST_FEW]) + more


# key -> (noun, sentence). {n} is the count phrase, {names} the first few names; {are}, {were},
# {have}, {state} agree with the count.
_WARNINGS: dict[str, tuple[str, str]] = {
    "wrapper": ("folder", "The dataset sits inside one wrapping folder ({names}); it was read from there."),
    "no_annotation": ("image", "{n} had no annotation file and {were} skipped ({names})."),
    "no_image": ("annotation", "{n} had no matching image and {were} skipped ({names})."),
    "ambiguous": (
        "image",
        "{n} share a name stem with another image and {were} skipped ({names}). "
        "Give every image its own name.",
    ),
    "malformed_xml": ("annotation", "{n} could not be read and their images were skipped ({names})."),
    "corrupt": (
        "image",
        "{n} could not be read as an image and {were} skipped ({names}). Re-export or remove them.",
    ),
    "unsupported": (
        "image",
        "{n} {are} in a format FieldLens does not read and {were} skipped ({names}). "
        "Convert them to JPEG or PNG.",
    ),
    "too_large": ("image", "{n} {have} over 50 megapixels and {were} skipped ({names}). Resize them."),
    "truncated_file": (
        "image",
        "{n} {are} cut short (the file ends early) and {are} used as far as "
        "the data goes ({names}). Re-export them if the preview shows grey areas.",
    ),
    "clipped": ("box", "{n} went outside the image and {were} clipped to its edge ({names})."),
    "degenerate": ("box", "{n} had zero or negative width or height and {were} dropped ({names})."),
    "unreadable_box": ("box", "{n} had no label or no numeric coordinates and {were} dropped ({names})."),
    "size_mismatch": (
        "annotation",
        "{n} {state} an image size that differs from the real image; the "
        "real size is used ({names}). Check that the photos were not resized after labelling.",
    ),
    "wrong_extension": (
        "image",
        "{n} {have} a file extension that does not match the real format and "
        "{are} read by the real format ({names}).",
    ),
    "not_rgb": (
        "image",
        "{n} {are} not plain RGB (grayscale, palette or transparency) and {are} "
        "converted to RGB for training ({names}).",
    ),
    "exif_rotation": (
        "image",
        "{n} carry an EXIF rotation flag ({names}). FieldLens uses the pixels as "
        "stored, as annotation tools do; if boxes look rotated in the preview, save those "
        "photos upright and label them again.",
    ),
    "orphan_box": (
        "box",
        "{n} pointed at a photo that is not in the zip and {were} dropped ({names}). Export the "
        "dataset again with its images.",
    ),
    "missing_label_file": (
        "image",
        "{n} had no label file and {are} used as photos without objects ({names}). If they do have "
        "objects, label them and export again.",
    ),
    "missing_split": ("folder", "{n} named in the export's settings {were} not in the zip ({names})."),
    "ignored": ("file", "{n} that {are} not part of the dataset {were} ignored ({names})."),
}


def render_findings(findings: Findings) -> list[str]:
    out = []
    for key, (noun, template) in _WARNINGS.items():
        n = findings.counts.get(key, 0)
        if n:
            one = n == 1
            out.append(
                template.format(
                    n=plural(n, noun),
                    names=findings.first(key),
                    are="is" if one else "are",
                    were="was" if one else "were",
                    have="has" if one else "have",
                    state="states" if one else "state",
                )
            )
    return out
