"""Load a TFLite interpreter: ai-edge-litert first, tflite-runtime where that is what the device has."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge.errors import EdgeError, NotADetectionModel
from edge.files import MODEL

log = logging.getLogger(__name__)


def interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # tflite-runtime 2.14 needs numpy < 2

        return Interpreter
    except ImportError as e:
        raise EdgeError(
            "No TFLite interpreter is installed. Run `pip install ai-edge-litert` (or, on devices without "
            "a wheel for it, `pip install tflite-runtime 'numpy<2'`)."
        ) from e


def load_interpreter(path: Path, threads: int = 2) -> Any:
    path = Path(path)
    if not path.is_file():
        raise EdgeError(f"Model file {path} does not exist. Give the path to a .tflite file ({MODEL}).")
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise NotADetectionModel(
            f"{path} is not a TFLite model (expected the 'TFL3' identifier at byte 4, found {head[4:8]!r}). "
            f"Use the {MODEL} that FieldLens delivered."
        )
    try:
        interpreter = interpreter_class()(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise NotADetectionModel(f"{path} could not be loaded by the TFLite interpreter: {e}") from e
    return interpreter
