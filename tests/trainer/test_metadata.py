"""The delivered model carries TFLite metadata that the TFLite Task Library accepts.

tflite-support pins protobuf < 4, so it cannot share this environment with TensorFlow: the test
installs it into its own virtual environment and runs the Task Library's ObjectDetector there.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

from trainer.metadata import read_associated_files

pytestmark = pytest.mark.slow

TASK_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from tflite_support import metadata
    from tflite_support.task import core, processor, vision
    path = sys.argv[1]
    meta = json.loads(metadata.MetadataDisplayer.with_model_file(path).get_metadata_json())
    options = vision.ObjectDetectorOptions(
        base_options=core.BaseOptions(file_name=path),
        detection_options=processor.DetectionOptions(max_results=5, score_threshold=0.0))
    detector = vision.ObjectDetector.create_from_options(options)
    image = np.full((160, 200, 3), 150, np.uint8)
    yy, xx = np.mgrid[:160, :200]
    image[((yy - 80) ** 2 + (xx - 90) ** 2) < 35 ** 2] = (220, 40, 40)
    result = detector.detect(vision.TensorImage.create_from_array(image))
    print(json.dumps({
        "outputs": [t["name"] for t in meta["subgraph_metadata"][0]["output_tensor_metadata"]],
        "categories": sorted({c.category_name for d in result.detections for c in d.categories}),
        "detections": len(result.detections),
    }))
""")


@pytest.fixture(scope="session")
def task_library_python(tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("tflite-support-venv")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "tflite-support==0.4.4"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"could not install tflite-support into a venv: {install.stderr[-2000:]}")
        pytest.skip("tflite-support 0.4.4 cannot be installed here (no package index?)")
    return python


def test_labels_are_packed_into_the_model(trained_model) -> None:
    for kind in ("int8", "float"):
        files = read_associated_files((trained_model.out_dir / f"model_{kind}.tflite").read_bytes())
        assert files["labels.txt"].decode().splitlines() == list(trained_model.config.labels)


def test_task_library_object_detector_accepts_the_int8_model(trained_model, task_library_python) -> None:
    run = subprocess.run(
        [str(task_library_python), "-c", TASK_SCRIPT, str(trained_model.out_dir / "model_int8.tflite")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outputs"] == ["location", "category", "score", "number of detections"]
    assert result["detections"] > 0
    assert set(result["categories"]) <= set(trained_model.config.labels)
