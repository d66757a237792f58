"""Read what the edge needs from a model file without TensorFlow or tflite-support.

- Labels packed into the model as an associated file (an uncompressed zip appended to the .tflite).
- The input normalisation (mean, std) from the TFLite metadata flatbuffer ("M001"), read with a
  minimal flatbuffer walker: root table -> subgraph_metadata[0] -> input_tensor_metadata[0] ->
  process_units[0] (NormalizationOptions) -> mean, std.
- The recommended score threshold: output_tensor_metadata[i] -> process_units (ScoreThresholdingOptions)
  -> global_score_threshold; and FieldLens' per-label thresholds, packed as another associated file.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Iterator
from typing import Any

from edge.files import LABELS, THRESHOLDS

# ProcessUnitOptions union members of the metadata schema
NORMALIZATION_OPTIONS, SCORE_THRESHOLDING_OPTIONS = 1, 3


def packed_labels(model: bytes) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".txt")]
            if not names:
                return None
            text = zf.read(LABELS if LABELS in names else names[0]).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError):
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def packed_thresholds(model: bytes) -> dict[str, Any] | None:
    """FieldLens' thresholds packed in the model ({"overall": 0.42, "labels": {...}}), or None."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            data = json.loads(zf.read(THRESHOLDS))
        overall = float(data["overall"])
        labels = {str(k): float(v) for k, v in dict(data.get("labels") or {}).items()}
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError):
        return None
    return {"overall": overall, "labels": labels}


class _Table:
    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vt_len = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, slot: int) -> int | None:
        off = 4 + 2 * slot
        if off >= self.vt_len:
            return None
        rel = struct.unpack_from("<H", self.buf, self.vtable + off)[0]
        return self.pos + rel if rel else None

    def u8(self, slot: int, default: int = 0) -> int:
        p = self._field(slot)
        return self.buf[p] if p is not None else default

    def table(self, slot: int) -> _Table | None:
        p = self._field(slot)
        return _Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]) if p is not None else None

    def vector(self, slot: int) -> tuple[int, int] | None:
        p = self._field(slot)
        if p is None:
            return None
        start = p + struct.unpack_from("<I", self.buf, p)[0]
        return start + 4, struct.unpack_from("<I", self.buf, start)[0]

    def tables(self, slot: int) -> list[_Table]:
        v = self.vector(slot)
        if v is None:
            return []
        start, n = v
        return [
            _Table(self.buf, start + 4 * i + struct.unpack_from("<I", self.buf, start + 4 * i)[0])
            for i in range(n)
        ]

    def f32(self, slot: int, default: float = 0.0) -> float:
        p = self._field(slot)
        return struct.unpack_from("<f", self.buf, p)[0] if p is not None else default

    def floats(self, slot: int) -> list[float]:
        v = self.vector(slot)
        return list(struct.unpack_from(f"<{v[1]}f", self.buf, v[0])) if v else []


def _subgraphs(model: bytes) -> Iterator[_Table | None]:
    """subgraph_metadata[0] of each place in the model that may hold the metadata flatbuffer (the
    identifier can also occur by chance in the weights: a caller that fails to read one tries the next)."""
    start = 0
    while (idx := model.find(b"M001", start)) != -1:
        start = idx + 1
        base = idx - 4
        if base < 0:
            continue
        try:
            buf = model[base:]
            subgraphs = _Table(buf, struct.unpack_from("<I", buf, 0)[0]).tables(3)
        except (struct.error, IndexError):
            continue
        yield subgraphs[0] if subgraphs else None


def _options(tensor: _Table, kind: int) -> _Table | None:
    """The options table of the tensor's first process unit of `kind`."""
    for unit in tensor.tables(4):
        if unit.u8(0) == kind and (options := unit.table(1)) is not None:
            return options
    return None


def input_normalization(model: bytes) -> tuple[float, float] | None:
    """(mean, std) of the input from the model's metadata, or None when it has none."""
    for subgraph in _subgraphs(model):
        try:
            inputs = subgraph.tables(2) if subgraph else []
            options = _options(inputs[0], NORMALIZATION_OPTIONS) if inputs else None
            mean, std = (options.floats(0), options.floats(1)) if options else ([], [])
        except (struct.error, IndexError):
            continue
        return (mean[0], std[0]) if mean and std else None
    return None


def score_threshold(model: bytes) -> float | None:
    """The global score threshold an output tensor's metadata recommends, or None."""
    for subgraph in _subgraphs(model):
        try:
            outputs = subgraph.tables(3) if subgraph else []
            found = [o.f32(0) for t in outputs if (o := _options(t, SCORE_THRESHOLDING_OPTIONS)) is not None]
        except (struct.error, IndexError):
            continue
        return float(found[0]) if found else None
    return None
