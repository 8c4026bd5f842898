"""Labelled folders: image and mask pairs for mIoU, read the one way every verb reads them.

A labelled folder is VOC's layout (`JPEGImages/` + `SegmentationClass/`, the ids of
`ImageSets/Segmentation/val.txt` when it exists) or `images/` + `masks/` with matching stems.
Masks are index or palette PNGs; 255 is ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from runtimes.errors import ImageError, InputFileError
from runtimes.imaging.image import load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def labelled_pairs(root: str | Path, limit: int | None = None) -> list[tuple[Path, Path]]:
    """(image, mask) paths of a labelled folder, sorted; raises when there are none."""
    root = Path(root)
    if (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir():
        images, masks = root / "JPEGImages", root / "SegmentationClass"
        split = root / "ImageSets" / "Segmentation" / "val.txt"
        ids = split.read_text().split() if split.is_file() else sorted(p.stem for p in masks.glob("*.png"))
    elif (root / "images").is_dir() and (root / "masks").is_dir():
        images, masks = root / "images", root / "masks"
        ids = sorted(p.stem for p in masks.glob("*.png"))
    else:
        raise InputFileError(f"{root}: expected JPEGImages/ + SegmentationClass/ (VOC) or images/ + masks/")
    pairs = []
    for sample_id in ids:
        image = next((images / f"{sample_id}{s}" for s in IMAGE_SUFFIXES if (images / f"{sample_id}{s}").is_file()), None)
        if image is not None:
            pairs.append((image, masks / f"{sample_id}.png"))
    if not pairs:
        raise InputFileError(f"{root}: no image has a mask with the same name")
    return pairs[:limit] if limit else pairs


def read_mask(path: Path) -> np.ndarray:
    """A label mask (palette or greyscale PNG of class indices) as an H x W array.

    Masks come from the user's folder like images do: undecodable files, decompression bombs and
    colour masks are an `ImageError` naming the file, never a traceback.
    """
    try:
        with Image.open(path) as mask:
            if len(mask.getbands()) != 1:
                raise ImageError(f"{path}: a label mask must hold one channel of class indices, not {mask.mode}")
            return np.asarray(mask)
    except FileNotFoundError:
        raise ImageError(f"mask not found: {path}") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: larger than the decompression-bomb limit") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: not a readable mask ({str(exc).strip() or type(exc).__name__})") from None


def read_pair(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An image and its label mask, which must have the image's size."""
    rgb, mask = load_image(image_path), read_mask(mask_path)
    if mask.shape != rgb.shape[:2]:
        raise ImageError(f"{mask_path}: the mask is {mask.shape[1]}x{mask.shape[0]} pixels but its image "
                         f"{image_path.name} is {rgb.shape[1]}x{rgb.shape[0]}")
    return rgb, mask
