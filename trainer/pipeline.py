"""From stored datasets to a delivered model: load the samples, train, deliver.

load_data          the team's datasets as training and validation samples (identical labels)
train_and_deliver  Trainer.run, then deliver the best checkpoint (trainer/deliver.py): the one
                   path from data to a model folder, for `fieldlens train run` and for jobs
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from storage.datasets import require_identical_labels
from storage.domain import LabelMap, Split
from storage.model_folder import Manifest
from storage.planning import require_training_images
from storage.services import Services
from trainer.config import TrainConfig
from trainer.deliver import export_and_verify
from trainer.events import Event, TrainResult
from trainer.train import TrainData, Trainer

__all__ = ["export_and_verify", "load_data", "train_and_deliver"]

log = logging.getLogger(__name__)


def load_data(
    services: Services,
    team: str,
    dataset_names: list[str],
    cache_dir: Path,
    val_dataset: str | None = None,
    use_validation: bool = True,
) -> tuple[LabelMap, TrainData]:
    """Samples of the team's datasets (identical labels required), split as stored.

    Test images are never trained on, not even when another dataset validates (`val_dataset`).
    """
    from trainer.samples import samples_from_datasets

    datasets = [services.datasets.get(team, n) for n in dataset_names]
    label_map = require_identical_labels(datasets)
    ids = [d.id for d in datasets]
    test = samples_from_datasets(services.datasets, ids, label_map, Split.TEST)
    if val_dataset is not None:
        train = samples_from_datasets(services.datasets, ids, label_map, (Split.TRAIN, Split.VAL))
        val_ds = services.datasets.get(team, val_dataset)
        val = samples_from_datasets(services.datasets, [val_ds.id], label_map, (Split.TRAIN, Split.VAL))
    else:
        train = samples_from_datasets(services.datasets, ids, label_map, Split.TRAIN)
        val = samples_from_datasets(services.datasets, ids, label_map, Split.VAL) if use_validation else []
    require_training_images(len(train))
    return label_map, TrainData(train, val, cache_dir, test)


def train_and_deliver(
    config: TrainConfig,
    data: TrainData,
    workdir: Path,
    out_dir: Path,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_weights: Path | None = None,
) -> tuple[TrainResult, Manifest]:
    """Train in `workdir`, then export and verify the best checkpoint (else the latest) into `out_dir`."""
    result = Trainer(config, data, workdir, on_event, should_stop, init_weights).run()
    checkpoint = result.best_checkpoint or result.checkpoint
    if checkpoint is None:
        raise RuntimeError("training ended before its first checkpoint")
    return result, export_and_verify(config, checkpoint, data, out_dir, result, workdir)
