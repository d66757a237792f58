"""The input pipeline: decoded-and-resized image cache, augmentation, anchor matching, batching.

Images are decoded once with Pillow (which copes with truncated JPEGs and grayscale files found in
real datasets), resized to the model input and kept in a uint8 array memory-mapped from disk, so
later epochs never decode a JPEG again and memory stays bounded by the OS page cache.
Boxes are (ymin, xmin, ymax, xmax) normalised to [0, 1]; classes are 1..C (0 is background).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFile

log = logging.getLogger(__name__)
ImageFile.LOAD_TRUNCATED_IMAGES = True


@dataclass(frozen=True)
class Sample:
    """One training or validation image: where its bytes are, its boxes and classes."""

    key: str  # content hash (blob name)
    load: Callable[[], bytes]
    boxes: np.ndarray  # [M, 4] float32 normalised corners
    classes: np.ndarray  # [M] int32, 1..C


def decode_resized(data: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when that is enough
        return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


class ImageCache:
    """uint8 [n, size, size, 3] images, built once per (images, size) and memory-mapped from disk."""

    def __init__(self, samples: Sequence[Sample], size: int, cache_dir: Path, threads: int = 4) -> None:
        key = hashlib.sha256(("|".join(s.key for s in samples) + f"@{size}").encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"images-{key}.npy"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            array = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.uint8, shape=(len(samples), size, size, 3)
            )

            def fill(i: int) -> None:
                array[i] = decode_resized(samples[i].load(), size)

            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fill, range(len(samples))))
            array.flush()
            del array
            os.replace(tmp, path)
            log.info("cached %s images at %spx in %s", len(samples), size, path)
        self.images = np.load(path, mmap_mode="r")
        self.path = path

    def __len__(self) -> int:
        return int(self.images.shape[0])


# Un-augmented training images the int8 converter calibrates on (at most)
CALIBRATION_IMAGES = 300


def calibration(cache: ImageCache, seed: int) -> Callable[[], Iterator[np.ndarray]]:
    """Up to CALIBRATION_IMAGES training images, chosen by `seed`, for int8 quantization."""
    order = list(range(len(cache)))
    random.Random(seed).shuffle(order)
    chosen = sorted(order[:CALIBRATION_IMAGES])

    def images() -> Iterator[np.ndarray]:
        for i in chosen:
            yield np.asarray(cache.images[i], np.float32)[None]

    return images


def _pad_targets(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged boxes as fixed arrays: boxes [n, M, 4], classes [n, M], counts [n]."""
    most = max([len(s.boxes) for s in samples] + [1])
    boxes = np.zeros((len(samples), most, 4), np.float32)
    classes = np.zeros((len(samples), most), np.int32)
    counts = np.zeros(len(samples), np.int32)
    for i, s in enumerate(samples):
        boxes[i, : len(s.boxes)] = s.boxes
        classes[i, : len(s.classes)] = s.classes
        counts[i] = len(s.boxes)
    return boxes, classes, counts


def _flip(image: tf.Tensor, boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.image.flip_left_right(image), tf.stack([ymin, 1 - xmax, ymax, 1 - xmin], axis=-1)


def _crop(image, boxes, classes, size: int):
    """Random crop of 40-100% of the side (aspect 3:4..4:3); keeps boxes whose centre is inside."""
    scale = tf.random.uniform([], 0.4, 1.0)
    aspect = tf.exp(tf.random.uniform([], np.log(0.75), np.log(4 / 3)))
    h = tf.minimum(scale / tf.sqrt(aspect), 1.0)
    w = tf.minimum(scale * tf.sqrt(aspect), 1.0)
    y0 = tf.random.uniform([], 0, 1 - h + 1e-6)
    x0 = tf.random.uniform([], 0, 1 - w + 1e-6)
    window = tf.stack([y0, x0, y0 + h, x0 + w])
    image = tf.image.crop_and_resize(image[None], window[None], [0], [size, size])[0]
    cy = (boxes[:, 0] + boxes[:, 2]) / 2
    cx = (boxes[:, 1] + boxes[:, 3]) / 2
    keep = (cy > y0) & (cy < y0 + h) & (cx > x0) & (cx < x0 + w)
    boxes = tf.boolean_mask(boxes, keep)
    classes = tf.boolean_mask(classes, keep)
    boxes = (boxes - tf.stack([y0, x0, y0, x0])) / tf.stack([h, w, h, w])
    return image, tf.clip_by_value(boxes, 0.0, 1.0), classes


def _zoom_out(image, boxes, size: int):
    """Shrink the image onto a canvas of its mean colour (up to 2x), so small objects are seen too."""
    ratio = tf.random.uniform([], 1.0, 2.0)
    inner = tf.cast(tf.cast(size, tf.float32) / ratio, tf.int32)
    oy = tf.random.uniform([], 0, size - inner + 1, tf.int32)
    ox = tf.random.uniform([], 0, size - inner + 1, tf.int32)
    small = tf.image.resize(image, [inner, inner])
    mean = tf.reduce_mean(image, axis=[0, 1])
    canvas = tf.pad(small - mean, [[oy, size - inner - oy], [ox, size - inner - ox], [0, 0]]) + mean
    s = tf.cast(inner, tf.float32) / size
    offset = tf.cast(tf.stack([oy, ox, oy, ox]), tf.float32) / size
    return canvas, boxes * s + offset


def _colour(image):
    image = image / 255.0
    image = tf.image.random_brightness(image, 0.15)
    image = tf.image.random_contrast(image, 0.75, 1.25)
    image = tf.image.random_saturation(image, 0.7, 1.3)
    image = tf.image.random_hue(image, 0.03)
    return tf.clip_by_value(image, 0.0, 1.0) * 255.0


def augment(image: tf.Tensor, boxes: tf.Tensor, classes: tf.Tensor, size: int):
    """float32 image [S, S, 3] 0..255, boxes [M, 4], classes [M] -> the same, randomly transformed."""
    image, boxes = tf.cond(tf.random.uniform([]) < 0.5, lambda: _flip(image, boxes), lambda: (image, boxes))
    choice = tf.random.uniform([])
    image, boxes, classes = tf.cond(
        choice < 0.5,
        lambda: _crop(image, boxes, classes, size),
        lambda: tf.cond(
            choice < 0.7, lambda: (*_zoom_out(image, boxes, size), classes), lambda: (image, boxes, classes)
        ),
    )
    # drop boxes that a crop left thinner than a pixel
    keep = ((boxes[:, 2] - boxes[:, 0]) * size >= 1.0) & ((boxes[:, 3] - boxes[:, 1]) * size >= 1.0)
    return _colour(image), tf.boolean_mask(boxes, keep), tf.boolean_mask(classes, keep)


def repeat_factors(samples: Sequence[Sample], threshold: float) -> np.ndarray:
    """LVIS's repeat factor sampling (Gupta et al., 2019): label c, found in a fraction f_c of the images,
    has r_c = max(1, sqrt(threshold / f_c)); an image is repeated by the largest r_c of its labels, so
    images of rare labels are seen more often and images of common ones as before. [n] float64 >= 1."""
    present = [np.unique(s.classes) for s in samples]
    labels, counts = np.unique(np.concatenate([*present, np.zeros(0, np.int32)]), return_counts=True)
    factors = np.maximum(1.0, np.sqrt(threshold * len(samples) / counts))
    per_label = dict(zip(labels.tolist(), factors.tolist(), strict=True))
    return np.array([max((per_label[c] for c in p.tolist()), default=1.0) for p in present])


def _epoch_order(factors: np.ndarray, seed: int, epochs: int = 64) -> np.ndarray:
    """`epochs` shuffled passes, image i taken floor(r_i) times plus once more with probability frac(r_i)."""
    rng = np.random.default_rng(seed)
    whole = np.floor(factors).astype(np.int64)
    order = []
    for _ in range(epochs):
        times = whole + (rng.random(len(factors)) < factors - whole)
        order.append(rng.permutation(np.repeat(np.arange(len(factors)), times)))
    return np.concatenate(order)


def train_dataset(
    cache: ImageCache,
    samples: Sequence[Sample],
    match: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]],
    batch_size: int,
    seed: int,
    augment_images: bool,
    repeat_threshold: float = 0.0,
) -> tf.data.Dataset:
    """Endless shuffled batches of (images [B,S,S,3] float32, (box targets [B,N,4], class targets [B,N],
    weights [B,N])). `match` turns one image's boxes and classes into its targets (Detector.match).
    With `repeat_threshold` > 0, images of rare labels come more often (repeat_factors)."""
    size = int(cache.images.shape[1])
    boxes, classes, counts = _pad_targets(samples)
    images = cache.images

    def load(i):
        image = tf.numpy_function(lambda j: np.asarray(images[j]), [i], tf.uint8, stateful=False)
        image = tf.reshape(image, [size, size, 3])
        n = tf.gather(counts, i)
        return tf.cast(image, tf.float32), tf.gather(boxes, i)[:n], tf.gather(classes, i)[:n]

    def prepare(image, b, c):
        if augment_images:
            image, b, c = augment(image, b, c, size)
        return image, match(b, c)

    if repeat_threshold > 0:
        order = _epoch_order(repeat_factors(samples, repeat_threshold), seed)
        ds = tf.data.Dataset.from_tensor_slices(order).repeat()
    else:
        ds = tf.data.Dataset.range(len(samples)).repeat().shuffle(min(len(samples), 2048), seed=seed)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
