"""TFLite metadata for a detection model, written with the `flatbuffers` package.

The TFLite Task Library (what FTC's TFOD and Android apps run) refuses a detection model without
metadata. tflite-support's own writer cannot share an environment with TensorFlow (it pins
protobuf < 4), so the ModelMetadata table is built here field by field from the published schema
(tensorflow_lite_support/metadata/metadata_schema.fbs, file identifier "M001"; the slot numbers
below are the fields' positions in that schema, a union taking two slots: type, then value).

Placement, as the metadata populator does it: the flatbuffer goes into a model buffer referenced by
a `TFLITE_METADATA` entry of Model.metadata, and the associated files (the labels file, and FieldLens'
per-label score thresholds) are appended to the .tflite as an uncompressed zip archive.

The schema has room for one score threshold (ScoreThresholdingOptions on the score tensor, which the
Task Library applies when its caller sets none); the per-label ones travel as a model-level
associated file, which the edge runtime reads (edge/metadata.py).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import flatbuffers
import numpy as np

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
PARSER_VERSION = "1.0.0"

# enums of the schema
DESCRIPTIONS = 1
TENSOR_VALUE_LABELS = 3
RGB = 1
BOUNDARIES = 1
RATIO = 0
# union member ids
FEATURE_PROPERTIES, IMAGE_PROPERTIES, BOUNDING_BOX_PROPERTIES = 1, 2, 3
NORMALIZATION_OPTIONS, SCORE_THRESHOLDING_OPTIONS = 1, 3


class _Writer:
    def __init__(self) -> None:
        self.b = flatbuffers.Builder(1024)

    def string(self, text: str) -> int:
        return self.b.CreateString(text)

    def vector(self, items: Sequence[int]) -> int:
        self.b.StartVector(4, len(items), 4)
        for item in reversed(items):
            self.b.PrependUOffsetTRelative(item)
        return self.b.EndVector()

    def floats(self, values: Sequence[float]) -> int:
        self.b.StartVector(4, len(values), 4)
        for v in reversed(values):
            self.b.PrependFloat32(v)
        return self.b.EndVector()

    def uints(self, values: Sequence[int]) -> int:
        self.b.StartVector(4, len(values), 4)
        for v in reversed(values):
            self.b.PrependUint32(v)
        return self.b.EndVector()

    def table(self, fields: dict[int, tuple[str, object]], slots: int) -> int:
        """Fields by slot: ('offset' | 'byte' | 'int' | 'uint', int) or ('float', float)."""
        self.b.StartObject(slots)
        for slot, (kind, value) in sorted(fields.items()):
            if kind == "offset":
                self.b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "byte":
                self.b.PrependUint8Slot(slot, value, 0)
            elif kind == "int":
                self.b.PrependInt32Slot(slot, value, 0)
            elif kind == "uint":
                self.b.PrependUint32Slot(slot, value, 0)
            elif kind == "float":
                self.b.PrependFloat32Slot(slot, value, 0.0)
        return self.b.EndObject()

    # --- schema tables -----------------------------------------------------------------------

    def associated_file(self, name: str, description: str, kind: int) -> int:
        n, d = self.string(name), self.string(description)
        return self.table({0: ("offset", n), 1: ("offset", d), 2: ("byte", kind)}, 4)

    def content(self, kind: int, properties: int, dims: tuple[int, int] | None = None) -> int:
        fields: dict[int, tuple[str, object]] = {0: ("byte", kind), 1: ("offset", properties)}
        if dims is not None:
            fields[2] = ("offset", self.table({0: ("int", dims[0]), 1: ("int", dims[1])}, 2))
        return self.table(fields, 3)

    def tensor(
        self,
        name: str,
        description: str,
        content: int,
        process_units: Sequence[int] = (),
        stats: int | None = None,
        files: Sequence[int] = (),
    ) -> int:
        fields: dict[int, tuple[str, object]] = {
            0: ("offset", self.string(name)),
            1: ("offset", self.string(description)),
            3: ("offset", content),
        }
        if process_units:
            fields[4] = ("offset", self.vector(process_units))
        if stats is not None:
            fields[5] = ("offset", stats)
        if files:
            fields[6] = ("offset", self.vector(files))
        return self.table(fields, 7)


def detection_metadata(
    name: str,
    description: str,
    input_size: int,
    labels_file: str,
    version: str,
    author: str = "FieldLens",
    license_: str = "",
    score_threshold: float | None = None,
    thresholds_file: str | None = None,
) -> bytes:
    """The ModelMetadata flatbuffer of an SSD detector with the four standard outputs; with the
    recommended `score_threshold` on the score tensor, and `thresholds_file` (per-label thresholds,
    packed beside the labels) named as one of the model's associated files."""
    w = _Writer()
    # input: an RGB image of input_size, values 0..255 taken as they are (mean 0, std 1: the model
    # normalises inside its graph)
    size = w.table({0: ("uint", input_size), 1: ("uint", input_size)}, 2)
    image_props = w.table({0: ("byte", RGB), 1: ("offset", size)}, 2)
    norm = w.table({0: ("offset", w.floats([0.0])), 1: ("offset", w.floats([1.0]))}, 2)
    unit = w.table({0: ("byte", NORMALIZATION_OPTIONS), 1: ("offset", norm)}, 2)
    stats = w.table({0: ("offset", w.floats([255.0])), 1: ("offset", w.floats([0.0]))}, 2)
    image = w.tensor(
        "image",
        f"Input image to be detected: RGB, any content, resized to {input_size}x{input_size}.",
        w.content(IMAGE_PROPERTIES, image_props),
        [unit],
        stats,
    )
    # outputs, in the model's order
    box_props = w.table(
        {0: ("offset", w.uints([1, 0, 3, 2])), 1: ("byte", BOUNDARIES), 2: ("byte", RATIO)}, 3
    )
    location = w.tensor(
        "location",
        "The locations of the detected boxes (ymin, xmin, ymax, xmax, normalised).",
        w.content(BOUNDING_BOX_PROPERTIES, box_props, (2, 2)),
    )
    labels = w.associated_file(
        labels_file, "Labels for categories that the model can recognize.", TENSOR_VALUE_LABELS
    )
    category = w.tensor(
        "category",
        "The categories of the detected boxes (index into the labels file).",
        w.content(FEATURE_PROPERTIES, w.table({}, 0), (2, 2)),
        files=[labels],
    )
    thresholding: list[int] = []
    if score_threshold is not None:
        options = w.table({0: ("float", float(score_threshold))}, 1)
        thresholding = [w.table({0: ("byte", SCORE_THRESHOLDING_OPTIONS), 1: ("offset", options)}, 2)]
    score = w.tensor(
        "score",
        "The scores of the detected boxes.",
        w.content(FEATURE_PROPERTIES, w.table({}, 0), (2, 2)),
        thresholding,
    )
    count = w.tensor(
        "number of detections",
        "The number of the detected boxes.",
        w.content(FEATURE_PROPERTIES, w.table({}, 0)),
    )
    subgraph = w.table(
        {
            0: ("offset", w.string(name)),
            2: ("offset", w.vector([image])),
            3: ("offset", w.vector([location, category, score, count])),
        },
        7,
    )
    fields: dict[int, tuple[str, object]] = {
        0: ("offset", w.string(name)),
        1: ("offset", w.string(description)),
        2: ("offset", w.string(version)),
        3: ("offset", w.vector([subgraph])),
        4: ("offset", w.string(author)),
        5: ("offset", w.string(license_)),
        7: ("offset", w.string(PARSER_VERSION)),
    }
    if thresholds_file is not None:
        described = "Score thresholds per label (JSON), chosen where F1 was highest on validation images."
        fields[6] = ("offset", w.vector([w.associated_file(thresholds_file, described, DESCRIPTIONS)]))
    root = w.table(fields, 8)
    w.b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(w.b.Output())


def populate(model: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """Put `metadata` into the model's TFLITE_METADATA buffer and append `files` as a stored zip.

    A model populated before keeps its buffer (its data replaced) and loses its old files: populating
    again, as delivery does once the thresholds are known, leaves nothing stale behind.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    payload = np.frombuffer(metadata, np.uint8)
    existing = [m for m in (obj.metadata or []) if m.name == METADATA_NAME.encode()]
    if existing:
        obj.buffers[existing[0].buffer].data = payload
    else:
        buffer = schema.BufferT()
        buffer.data = payload
        obj.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME.encode()
        entry.buffer = len(obj.buffers) - 1
        obj.metadata = [*(obj.metadata or []), entry]
    out = io.BytesIO(bytes(flatbuffer_utils.convert_object_to_bytearray(obj)))
    out.seek(0, io.SEEK_END)
    # the Task Library reads associated files in place, so they must be stored uncompressed
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def read_associated_files(model: bytes) -> dict[str, bytes]:
    """The files appended to a model (what the Task Library reads)."""
    with zipfile.ZipFile(io.BytesIO(model)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}
