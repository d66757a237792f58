"""Parse one Pascal VOC annotation file with defusedxml.

Real files vary: float coordinates, no <size> or <filename>, difficult/truncated flags, no
objects at all (a negative image). Hostile XML (DTDs, entities, external references) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from storage.errors import BadArchive


class MalformedAnnotation(ValueError):
    """The XML cannot be read as a VOC annotation; the sentence says why."""


@dataclass(frozen=True, slots=True)
class RawBox:
    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: bool
    truncated: bool


@dataclass(slots=True)
class Annotation:
    filename: str | None
    size: tuple[int, int] | None  # (width, height) as the XML states it
    boxes: list[RawBox] = field(default_factory=list)
    unreadable_boxes: int = 0  # objects without a name or numeric box: dropped and counted
    normalized: bool = False  # boxes in fractions of the image size (YOLO), scaled once it is known


def _text(node: Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _flag(node: Element, tag: str) -> bool:
    value = _text(node, tag)
    try:
        return value is not None and float(value) != 0
    except ValueError:
        return value is not None and value.lower() in ("true", "yes")


def _size(root: Element) -> tuple[int, int] | None:
    size = root.find("size")
    try:
        w = int(float(_text(size, "width") or "0"))
        h = int(float(_text(size, "height") or "0"))
    except ValueError:
        return None
    return (w, h) if w > 0 and h > 0 else None


def parse_annotation(data: bytes, name: str) -> Annotation:
    """Parse VOC XML bytes. Raises BadArchive for hostile XML, MalformedAnnotation otherwise."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as e:
        raise BadArchive(
            f"{name} contains XML features that annotation tools never write (a DTD, entities or "
            "external references) and can be used to attack servers; the dataset was refused. "
            "Export the annotations again from your labelling tool."
        ) from e
    except (ParseError, UnicodeDecodeError, ValueError) as e:
        raise MalformedAnnotation(f"{name} is not valid XML ({e})") from e
    if root.tag != "annotation":
        raise MalformedAnnotation(f"{name} is XML but not a Pascal VOC annotation (root <{root.tag}>)")

    ann = Annotation(filename=_text(root, "filename"), size=_size(root))
    for obj in root.iter("object"):
        label = _text(obj, "name")
        bnd = obj.find("bndbox")
        try:
            coords = [float(_text(bnd, t) or "nan") for t in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            coords = [float("nan")]
        if not label or any(c != c for c in coords):  # NaN check: missing or non-numeric
            ann.unreadable_boxes += 1
            continue
        x0, y0, x1, y1 = coords
        ann.boxes.append(RawBox(label, x0, y0, x1, y1, _flag(obj, "difficult"), _flag(obj, "truncated")))
    return ann
