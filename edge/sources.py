"""Frame sources: an image file, a folder of images, a video file, a camera.

Images need only Pillow. Video files and USB cameras need OpenCV (`fieldlens[edge-camera]`); the
Raspberry Pi camera uses picamera2 when it is installed. Frames are RGB uint8 arrays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge.errors import EdgeError, SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"}


@dataclass
class Frame:
    index: int
    timestamp: float
    name: str
    image: np.ndarray | None  # RGB uint8 [H, W, 3]; None when the frame could not be read
    error: str | None = None


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise SourceError(f"cannot read image {path}: {e}") from e


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as e:
        raise EdgeError("Video files and cameras need OpenCV: pip install 'fieldlens[edge-camera]'.") from e
    return cv2


def _images(paths: list[Path]) -> Iterator[Frame]:
    for i, path in enumerate(paths):
        try:
            yield Frame(i, time.time(), path.name, read_image(path))
        except SourceError as e:
            log.warning("%s", e)
            yield Frame(i, time.time(), path.name, None, str(e))


def _video(capture: Any, name: str) -> Iterator[Frame]:
    cv2 = _cv2()
    i = 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield Frame(i, time.time(), f"{name}#{i}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        capture.release()


def _picamera(size: tuple[int, int]) -> Iterator[Frame]:
    from picamera2 import Picamera2

    camera = Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": size, "format": "RGB888"}))
    camera.start()
    i = 0
    try:
        while True:
            # picamera2's "RGB888" is BGR in memory order
            yield Frame(i, time.time(), f"picamera#{i}", camera.capture_array()[..., ::-1].copy())
            i += 1
    finally:
        camera.stop()


def open_source(spec: str, loop: bool = False) -> Iterator[Frame]:
    """Frames from `spec`: an image, a folder, a video file, a camera index ('0'), or 'picamera'."""
    if spec == "picamera":
        return _picamera((640, 480))
    if spec.isdigit() or spec.startswith("/dev/video"):
        cv2 = _cv2()
        capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
        if not capture.isOpened():
            raise SourceError(f"camera {spec} could not be opened; check the cable and `ls /dev/video*`")
        return _video(capture, f"camera{spec}")
    path = Path(spec)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SourceError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return _repeat(lambda: _images(paths), loop)
    if not path.exists():
        raise SourceError(
            f"source {spec} does not exist (give an image, a folder, a video file or a camera index)"
        )
    if path.suffix.lower() in VIDEO_SUFFIXES:
        cv2 = _cv2()

        def video() -> Iterator[Frame]:
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                raise SourceError(f"video {path} could not be opened (unsupported codec or not a video)")
            return _video(capture, path.name)

        return _repeat(video, loop)
    image = read_image(path)  # a single image: fail loudly, there is nothing else to do
    return _repeat(lambda: iter([Frame(0, time.time(), path.name, image)]), loop)


def _repeat(make: Any, loop: bool) -> Iterator[Frame]:
    index = 0
    while True:
        for frame in make():
            frame.index = index
            index += 1
            yield frame
        if not loop:
            return
