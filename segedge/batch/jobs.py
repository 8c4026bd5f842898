"""One image's job, the same in one process (`segedge predict`) and in a Ray actor (`--engine ray`).

`find_images` lists the jobs, `output_stem` names where each one's outputs go, `segment` writes
them, `outputs_whole` says whether an earlier run already did. Both engines call exactly these,
so their outputs are the same bytes by construction. Nothing here imports torch or ray.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from runtimes.errors import UsageError
from runtimes.guards.fileio import atomic_path
from runtimes.imaging.image import ImageLike, load_image
from runtimes.imaging.palette import Color
from runtimes.imaging.mask_files import save_npy, save_png
from runtimes.imaging.postprocess import labels_from_probabilities, overlay_image, palette_image
from runtimes.predictor import Predictor

MASK, OVERLAY, PROBA = "_mask.png", "_overlay.png", "_proba.npy"
OUTPUTS = (MASK, OVERLAY, PROBA)  # how the names of an image's outputs end
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC


def find_images(inputs: list[Path], recursive: bool) -> list[tuple[Path, Path]]:
    """(file, output path relative to the output folder) for every image named or found.

    A folder's images keep their path below the folder; so do a glob pattern's below the folders
    the pattern names before its first wildcard (`photos/**/*.jpg`: below `photos`). A pattern is
    expanded here when no shell did (it was quoted, or Windows' shells expand nothing); `**`
    crosses folders. Hidden files are skipped, so are files whose extension no Pillow decoder
    claims; a file named explicitly is always tried.
    """
    extensions = image_extensions()
    jobs: list[tuple[Path, Path]] = []
    for given in inputs:
        if given.is_dir():
            found = given.rglob("*") if recursive else given.glob("*")
            files = sorted(p for p in found if p.is_file() and p.suffix.lower() in extensions and not _hidden(p, given))
            jobs.extend((p, p.relative_to(given)) for p in files)
        elif is_pattern(given):
            root = pattern_root(given)
            matches = (Path(match) for match in glob.glob(str(given), recursive=True))  # hidden files: never matched
            files = sorted(p for p in matches if p.is_file() and p.suffix.lower() in extensions)
            if not files:
                raise UsageError(f"no images match {given}")
            jobs.extend((p, p.relative_to(root)) for p in files)
        else:
            jobs.append((given, Path(given.name)))
    if not jobs:
        hint = "" if recursive else " (add --recursive?)"
        raise UsageError(f"no images found in {', '.join(str(p) for p in inputs)}{hint}")
    seen: dict[Path, Path] = {}
    for source, relative in jobs:
        key = relative.with_suffix("")
        if key in seen and seen[key] != source:
            raise UsageError(f"{seen[key]} and {source} would write the same output {key}{MASK}; predict them separately")
        seen[key] = source
    return jobs


def image_extensions() -> set[str]:
    """The file extensions (".jpg", lower case) a Pillow decoder claims: what a folder or pattern yields."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


_WILDCARDS = "*?["  # what makes a name a pattern for Python's glob


def is_pattern(given: Path) -> bool:
    """Whether `given` is a glob pattern (a wildcard in its name, and no such file)."""
    return any(char in _WILDCARDS for char in str(given)) and not given.exists()


def pattern_root(pattern: Path) -> Path:
    """The folders a pattern names before its first wildcard: `photos/2024` for `photos/2024/*/*.jpg`."""
    fixed = []
    for part in pattern.parts:
        if any(char in _WILDCARDS for char in part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def output_stem(output_dir: Path, relative: Path) -> Path:
    """Where one image's outputs go, less their suffixes: OUTPUT_DIR/sub/name for sub/name.jpg."""
    return output_dir / relative.parent / relative.stem


def output_paths(stem: Path, overlay: bool, proba: bool) -> list[Path]:
    """The files one image gets: the mask always, the overlay and the probabilities when asked."""
    suffixes = [MASK] + [OVERLAY] * overlay + [PROBA] * proba
    return [Path(f"{stem}{suffix}") for suffix in suffixes]


def segment(predictor: Predictor, source: ImageLike, stem: Path, overlay: bool, proba: bool) -> None:
    """Segment one image; write STEM_mask.png, and STEM_overlay.png / STEM_proba.npy if asked.

    `source`: a path, or the file's bytes in an `io.BytesIO` whose `name` is the path (what a Ray
    task read): the same decoder runs on both, and its errors name the same file.
    """
    image = read_image(source, predictor.max_pixels)
    if proba:
        labels = _with_probabilities(predictor, image, Path(f"{stem}{PROBA}"), Path(f"{stem}{MASK}"))
        if overlay:
            save_png(overlay_image(image, labels, predictor.card.colors()), f"{stem}{OVERLAY}")
    else:
        write_pngs(stem, image, predictor.predict(image), predictor.card.colors(), overlay)


def read_image(source: ImageLike, max_pixels: int | None) -> np.ndarray:
    """`load_image`, with Pillow's decompression-bomb warning (89-179 MP) a refusal too, unless
    `max_pixels` raised the limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return load_image(source, max_pixels=max_pixels)


def write_pngs(stem: Path, image: np.ndarray, labels: np.ndarray, colors: Sequence[Color], overlay: bool) -> None:
    """STEM_mask.png (palette PNG of the labels), and STEM_overlay.png when asked."""
    save_png(palette_image(labels, colors), f"{stem}{MASK}")
    if overlay:
        save_png(overlay_image(image, labels, colors), f"{stem}{OVERLAY}")


def _with_probabilities(predictor: Predictor, image: np.ndarray, npy: Path, mask: Path) -> np.ndarray:
    """Write the probabilities to `npy` and the mask to `mask`; return the labels (one model run).

    The probabilities stream into a memory-mapped .npy, block by block, so a huge image's never need
    to fit in memory; its space is claimed first, so a full disk is an error, not a SIGBUS. The mask
    is written first and the .npy moved into place after it: a later run knows it as segedge's by
    that mask (runtimes.guards.outputs).
    """
    shape = predictor.probability_shape(image)
    kind, threshold = predictor.card.output_kind, predictor.threshold
    if not shape[0]:  # a model whose class count its card does not know: in memory, as before
        probabilities = predictor.predict_proba(image)
        labels = labels_from_probabilities(probabilities, kind, threshold)
        save_png(palette_image(labels, predictor.card.colors()), mask)
        save_npy(probabilities, npy)
        return labels
    with atomic_path(npy, suffix=".npy") as tmp:
        stream = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        if hasattr(os, "posix_fallocate"):
            with open(tmp, "r+b") as handle:
                os.posix_fallocate(handle.fileno(), 0, os.path.getsize(tmp))
        predictor.predict_proba(image, out=stream)
        labels = labels_from_probabilities(stream, kind, threshold)  # read back in row blocks
        stream.flush()
        del stream
        save_png(palette_image(labels, predictor.card.colors()), mask)
    return labels


def outputs_whole(stem: Path, overlay: bool, proba: bool) -> bool:
    """True when every output this image would get is already there, whole: a resumed run skips it.

    segedge writes atomically, so a file under its final name was written to the end; what is
    checked besides is that nothing else cut it short (a copy, a full disk outside segedge): a PNG
    must start with PNG's signature and end with its IEND chunk, a .npy must hold the bytes its
    header's shape and dtype say. Both read a few bytes, never the pixels.
    """
    return all(_png_whole(p) if p.suffix == ".png" else _npy_whole(p) for p in output_paths(stem, overlay, proba))


def _png_whole(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            if handle.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
                return False
            handle.seek(-len(_PNG_END), os.SEEK_END)
            return handle.read() == _PNG_END
    except OSError:  # missing, a folder, unreadable, or shorter than the two marks
        return False


def _npy_whole(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
            expected = handle.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            return os.fstat(handle.fileno()).st_size == expected
    except (OSError, ValueError):  # missing, unreadable, or not a .npy header
        return False


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
