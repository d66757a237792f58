"""Robot target zips: each holds exactly the files its HOW-TO names, the README carries the same
texts, an Edge TPU model is added when edgetpu_compiler is on the PATH, and the Limelight model loads
in LiteRT with uint8 input and the four standard outputs."""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from storage.model_folder import EDGE_TPU_MODEL
from storage.target_texts import HOW_TO
from storage.targets import HOW_TO_FILE, TARGETS, UnknownTarget, target_zip
from storage.thresholds import OperatingPoint, Thresholds
from tests.model_folders import write_model_folder

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
THRESHOLDS = Thresholds(
    overall=OperatingPoint(0.42, 0.91, 0.88, 0.895, 40),
    labels={
        "circle": OperatingPoint(0.4, 0.9, 0.9, 0.9, 20),
        "square": OperatingPoint(0.55, 1.0, 0.8, 0.89, 20),
    },
    chosen_on="validation",
    images=12,
)


def named_files(howto: str) -> set[str]:
    """The paths listed under "Files in this zip:" (up to the next blank line)."""
    block = howto.split("Files in this zip:\n", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0] for line in block.splitlines()}


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


@pytest.fixture
def folder(tmp_path):
    return write_model_folder(tmp_path / "model", thresholds=THRESHOLDS)


@pytest.mark.parametrize("target", list(TARGETS))
def test_each_zip_holds_exactly_the_files_its_howto_names(folder, target: str) -> None:
    with open_zip(target_zip(folder, target, 7, "shapes v1")) as zf:
        howto = zf.read(HOW_TO_FILE).decode()
        assert set(zf.namelist()) == named_files(howto)
        assert zf.read(TARGETS[target].model) == folder.int8_model.read_bytes()
        assert zf.read(TARGETS[target].labels) == folder.labels.read_bytes()
    assert howto.startswith(f"FieldLens model 7 for {TARGETS[target].title}: shapes v1")
    assert "robot: 0.42 (precision 0.91, recall 0.88 on the validation images)" in howto
    assert "square: 0.55 (precision 1.00, recall 0.80)" in howto
    assert HOW_TO[target] in howto


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_readme_carries_each_howto_text(target: str) -> None:
    assert HOW_TO[target] in README


def test_ftc_code_carries_the_model_thresholds_and_labels(folder) -> None:
    with open_zip(target_zip(folder, "ftc", 7, "shapes")) as zf:
        java = zf.read(next(n for n in zf.namelist() if n.endswith("FieldLensProcessor.java"))).decode()
    assert 'THRESHOLDS.put("square", 0.55);' in java and "ROBOT = 0.42;" in java
    assert 'LABELS = {"circle", "square", "triangle"};' in java and "SIZE = 128;" in java


def test_frc_unit_publishes_to_networktables(folder) -> None:
    with open_zip(target_zip(folder, "frc", 7, "shapes")) as zf:
        unit = zf.read("fieldlens/fieldlens-edge.service").decode()
        assert "--nt TEAM" in unit and "FieldLensVision.java" in zf.namelist()


def test_a_model_without_thresholds_says_where_to_start(tmp_path) -> None:
    old = write_model_folder(tmp_path / "old")
    with open_zip(target_zip(old, "limelight", 3, "old")) as zf:
        assert "start at 0.50" in zf.read(HOW_TO_FILE).decode()


def test_limelight_zip_says_why_there_is_no_edge_tpu_model(folder, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with open_zip(target_zip(folder, "limelight", 7, "shapes")) as zf:
        assert EDGE_TPU_MODEL not in zf.namelist()
        assert "edgetpu_compiler was not installed" in zf.read(HOW_TO_FILE).decode()


def test_limelight_zip_adds_the_edge_tpu_model_when_the_compiler_is_there(
    folder, tmp_path, monkeypatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "edgetpu_compiler"  # writes what the real one would name its output
    fake.write_text(
        '#!/bin/sh\nout=""\nwhile [ $# -gt 1 ]; do case "$1" in -o) out="$2"; shift;; esac; shift; done\n'
        'printf edgetpu > "$out/$(basename "$1" .tflite)_edgetpu.tflite"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with open_zip(target_zip(folder, "limelight", 7, "shapes")) as zf:
        howto = zf.read(HOW_TO_FILE).decode()
        assert zf.read(EDGE_TPU_MODEL) == b"edgetpu"
        assert set(zf.namelist()) == named_files(howto) and "compiled by edgetpu_compiler" in howto


def test_unknown_target_is_a_sentence(folder) -> None:
    with pytest.raises(UnknownTarget, match="Choose one of: limelight, ftc, pi, frc"):
        target_zip(folder, "roborio", 7, "shapes")


@pytest.mark.slow
def test_the_limelight_model_loads_in_litert_with_uint8_input_and_four_outputs(trained_model) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from storage.model_folder import ModelFolder

    folder = ModelFolder(trained_model.out_dir)
    with open_zip(target_zip(folder, "limelight", 1, "tiny")) as zf:
        model = zf.read(TARGETS["limelight"].model)
        howto = zf.read(HOW_TO_FILE).decode()
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    assert inp["dtype"] == np.uint8 and tuple(inp["shape"]) == (1, 128, 128, 3)
    shapes = [tuple(o["shape"]) for o in interpreter.get_output_details()]
    k = shapes[0][1]
    assert shapes == [(1, k, 4), (1, k), (1, k), (1,)]
    robot = trained_model.manifest.thresholds.overall.score
    assert re.search(rf"robot: {robot:.2f} \(precision", howto)
