"""Edge fixtures: the session's trained model and a few frames it knows."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storage.voc.synth import make_voc_zip


@pytest.fixture(scope="session")
def int8_model(trained_model) -> Path:
    return trained_model.out_dir / "model_int8.tflite"


@pytest.fixture(scope="session")
def frames_dir(tmp_path_factory) -> Path:
    """Synthetic shape photos (the kind the session model was trained on) as JPEG files."""
    folder = tmp_path_factory.mktemp("frames")
    with zipfile.ZipFile(io.BytesIO(make_voc_zip(images=40, seed=21))) as zf:
        for name in sorted(n for n in zf.namelist() if n.endswith(".jpg"))[:5]:
            (folder / Path(name).name).write_bytes(zf.read(name))
    return folder


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))
