"""Read what the edge needs from a model file without TensorFlow or tflite-support.

- Labels packed into the model as an associated file (an uncompressed zip appended to the .tflite).
- The input normalisation (mean, std) from the TFLite metadata flatbuffer ("M001"), read with a
  minimal flatbuffer walker: root table -> subgraph_metadata[0] -> input_tensor_metadata[0] ->
  process_units[0] (NormalizationOptions) -> mean, std.
"""

from __future__ import annotations

import io
import struct
import zipfile


def packed_labels(model: bytes) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".txt")]
            if not names:
                return None
            text = zf.read("labels.txt" if "labels.txt" in names else names[0]).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError):
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


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

    def floats(self, slot: int) -> list[float]:
        v = self.vector(slot)
        return list(struct.unpack_from(f"<{v[1]}f", self.buf, v[0])) if v else []


def input_normalization(model: bytes) -> tuple[float, float] | None:
    """(mean, std) of the input from the model's metadata, or None when it has none."""
    start = 0
    while (idx := model.find(b"M001", start)) != -1:
        start = idx + 1
        base = idx - 4
        if base < 0:
            continue
        try:
            buf = model[base:]
            root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
            subgraphs = root.tables(3)
            inputs = subgraphs[0].tables(2) if subgraphs else []
            units = inputs[0].tables(4) if inputs else []
            for unit in units:
                if unit.u8(0) == 1 and (options := unit.table(1)) is not None:  # NormalizationOptions
                    mean, std = options.floats(0), options.floats(1)
                    if mean and std:
                        return mean[0], std[0]
            return None
        except (struct.error, IndexError):
            continue
    return None
