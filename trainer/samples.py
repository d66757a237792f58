"""Turn stored datasets into training samples (normalised boxes, class ids) without copying images."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial

import numpy as np

from storage.blobs import BlobStore
from storage.datasets import DatasetStore
from storage.domain import ImageRecord, LabelMap, Split
from trainer.data import Sample


def to_sample(image: ImageRecord, label_map: LabelMap, blobs: BlobStore) -> Sample:
    boxes = np.array(
        [
            [b.ymin / image.height, b.xmin / image.width, b.ymax / image.height, b.xmax / image.width]
            for b in image.boxes
        ],
        np.float32,
    ).reshape(-1, 4)
    classes = np.array([label_map.id_of(b.label) for b in image.boxes], np.int32)
    return Sample(image.sha256, partial(blobs.read, image.sha256), boxes, classes)


def samples_from_datasets(
    datasets: DatasetStore,
    dataset_ids: Sequence[int],
    label_map: LabelMap,
    splits: Split | Collection[Split],
) -> list[Sample]:
    """Samples of the given split(s) of the datasets, in a stable order."""
    wanted = {splits} if isinstance(splits, Split) else set(splits)
    out = []
    for dataset_id in dataset_ids:
        for image in datasets.images(dataset_id):
            if image.split in wanted:
                out.append(to_sample(image, label_map, datasets.blobs))
    return out
