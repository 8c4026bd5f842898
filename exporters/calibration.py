"""Calibration images for int8: found in a folder, prepared by the Predictor's own code, streamed.

The images go through `runtimes.imaging.preprocess.to_model_input` with the model's card (colour order,
mean/std, scale, padding to a side the model takes), exactly as `Predictor` prepares a photo,
so the activation ranges that calibration measures are the ones the model meets at run time.
`ImageFolderReader` decodes one image per `get_next()` call: memory holds one image, whatever
the folder's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from runtimes.model.card import ModelCard
from runtimes.errors import InputFileError
from runtimes.imaging.image import load_image
from runtimes.imaging.preprocess import to_model_input
from runtimes.backends.onnxruntime_session import as_model_feed

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def calibration_images(folder: str | Path, count: int) -> list[Path]:
    """`count` image files of `folder` (see `image_files`), spread evenly over its sorted listing.

    A folder holding fewer than `count` gives all of its images, as NNCF's and ONNX Runtime's own
    tools use what they are given (`shortfall` words the warning the caller shows); a folder
    holding none raises `InputFileError`.
    """
    if count < 1:
        raise InputFileError(f"the calibration image count must be >= 1, got {count}")
    return spread(image_files(folder, "calibration"), count)


def shortfall(folder: str | Path, used: int, count: int) -> str | None:
    """The warning for a calibration folder that held fewer images than asked for, else None."""
    if used >= count:
        return None
    return f"calibration folder {folder} holds {used} images, fewer than --calib-count {count}: all {used} used"


def image_files(folder: str | Path, what: str = "image") -> list[Path]:
    """The image files of `folder`, sorted.

    `folder` holds the images, or is a VOC-style dataset root: then its `JPEGImages/` are used,
    restricted to the ids of `ImageSets/Segmentation/train.txt` when that file exists, so that
    calibration never sees the images accuracy is measured on. Raises `InputFileError` when the
    folder is missing or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{what} folder not found: {folder}" if not folder.exists() else f"{what} path is not a folder: {folder}")
    images = _images_in(folder)
    if not images:
        raise InputFileError(f"{what} folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def spread(paths: list[Path], count: int) -> list[Path]:
    """`count` of `paths`, evenly spaced (all of them when there are no more)."""
    if count >= len(paths):
        return list(paths)
    return [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]


def _images_in(folder: Path) -> list[Path]:
    images = _listing(folder)
    voc = folder / "JPEGImages"
    if images or not voc.is_dir():
        return images
    split = folder / "ImageSets" / "Segmentation" / "train.txt"
    if not split.is_file():
        return _listing(voc)
    train_ids = set(split.read_text().split())
    return [p for p in _listing(voc) if p.stem in train_ids]


def _listing(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ImageFolderReader(CalibrationDataReader):
    """Feeds ONNX Runtime's calibrator one prepared image per call, as the model takes it: its layout
    (an NHWC model gets 1 x H x W x 3) and element type (`input_type`: "tensor(float)", "tensor(uint8)", ...)."""

    def __init__(self, paths: Sequence[Path], card: ModelCard, input_name: str,
                 input_type: str = "tensor(float)") -> None:
        self.paths = list(paths)
        self.card = card
        self.input_name = input_name
        self.input_type = input_type
        self._pending: Iterator[Path] = iter(self.paths)

    def get_next(self) -> dict[str, np.ndarray] | None:
        path = next(self._pending, None)
        if path is None:
            return None
        x, _ = to_model_input(load_image(path), self.card)
        return {self.input_name: as_model_feed(x[None], self.card, self.input_type)}

    def rewind(self) -> None:
        self._pending = iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)
