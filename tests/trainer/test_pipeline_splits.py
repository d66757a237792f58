"""Which images training, validation and the final test see (no TensorFlow step runs here)."""

from __future__ import annotations

from pathlib import Path

from storage.services import Services
from tests import exports
from trainer.pipeline import load_data

PS = exports.photos(train=6, valid=3, test=2)


def _stems(samples) -> set[str]:
    return {s.key for s in samples}


def test_test_images_are_loaded_apart_and_never_trained_on(services: Services, tmp_path: Path) -> None:
    services.datasets.add("local", "rf", exports.roboflow_voc(PS))
    _, data = load_data(services, "local", ["rf"], tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (6, 3, 2)
    assert not _stems(data.test) & (_stems(data.train) | _stems(data.val))


def test_test_images_stay_out_of_training_when_another_dataset_validates(
    services: Services, tmp_path: Path
) -> None:
    services.datasets.add("local", "rf", exports.roboflow_voc(PS))
    services.datasets.add("local", "other", exports.yolo(exports.photos(train=2, valid=1, test=1)))
    _, data = load_data(services, "local", ["rf"], tmp_path, val_dataset="other")
    assert len(data.train) == 9 and len(data.test) == 2
    assert len(data.val) == 3  # the other dataset's test image is not used to choose either
