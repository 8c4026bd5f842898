"""From a model's output to what an app shows: label maps, probabilities, palette images, overlays.

A model's output is C x H x W: scores over C classes (`output_kind` "logits"; "probabilities"
when a softmax is already applied; "labels" once a label map is turned into one-hot scores at the
model boundary, see `one_hot`), or one channel holding a probability ("sigmoid") or a logit
("logit") of the foreground of a binary mask. Writing them to files: `runtimes.imaging.mask_files`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..errors import CardError, UsageError
from .preprocess import pixel_scale

Color = tuple[int, int, int]


CLASS_SCORES = ("logits", "probabilities", "labels")  # kinds with one channel per class
BINARY = ("sigmoid", "logit")  # kinds with one foreground channel


def check_output_kind(channels: int, kind: str) -> None:
    """Refuse outputs the card's `output_kind` cannot describe, with the fix in the message."""
    if kind in CLASS_SCORES and channels == 1:
        raise CardError("the model outputs one channel: set output_kind to 'sigmoid' (a probability) or 'logit' "
                        "(--output-kind)")
    if kind in BINARY and channels != 1:
        raise CardError(f"output_kind {kind!r} is for one-channel models; this one outputs {channels} channels")


def label_dtype(num_classes: int) -> type[np.unsignedinteger]:
    return np.uint8 if num_classes <= 256 else np.uint16


def labels(output: np.ndarray, kind: str, threshold: float = 0.5) -> np.ndarray:
    """C x H x W output -> H x W label map (uint8; uint16 beyond 256 classes)."""
    check_output_kind(output.shape[0], kind)
    if kind in CLASS_SCORES:
        return argmax_classes(output)
    return (foreground_probability(output[0], kind) > threshold).astype(np.uint8)


def probabilities(output: np.ndarray, kind: str) -> np.ndarray:
    """C x H x W output -> C x H x W float32 class probabilities (2 x H x W for a binary model)."""
    check_output_kind(output.shape[0], kind)
    if kind in BINARY:
        p = foreground_probability(output[0], kind)
        return np.stack([1.0 - p, p])
    if kind != "logits":  # already probabilities (or one-hot labels)
        return output.astype(np.float32, copy=True)
    e = output - output.max(axis=0)  # in place from here on: one C x H x W array in all
    np.exp(e, out=e)
    e *= 1.0 / e.sum(axis=0)
    return e


def labels_from_probabilities(probs: np.ndarray, kind: str, threshold: float = 0.5) -> np.ndarray:
    """The label map of `probabilities(output, kind)`, equal to `labels(output, kind, threshold)`.

    In blocks of rows: `probs` may be a memory-mapped .npy of a huge image, whose H x W
    intermediates (a float32 maximum, masks) would otherwise cost more than the label map itself.
    """
    rows = max(1, _BLOCK_PIXELS // max(1, probs.shape[-1]))
    if probs.shape[1] <= rows:
        return _labels_from_probabilities(probs, kind, threshold)
    first = _labels_from_probabilities(probs[:, :rows], kind, threshold)
    result = np.empty(probs.shape[1:], dtype=first.dtype)
    result[:rows] = first
    for top in range(rows, probs.shape[1], rows):
        result[top : top + rows] = _labels_from_probabilities(probs[:, top : top + rows], kind, threshold)
    return result


_BLOCK_PIXELS = 2**22


def _labels_from_probabilities(probs: np.ndarray, kind: str, threshold: float) -> np.ndarray:
    if kind in CLASS_SCORES:
        return argmax_classes(probs)
    return (probs[1] > threshold).astype(np.uint8)


def one_hot(label_maps: np.ndarray, num_classes: int) -> np.ndarray:
    """N x H x W class indices -> N x K x H x W float32 one-hot scores, so that label-map models
    are tiled, compared and labelled as score models are (an index >= K is an error)."""
    top = int(label_maps.max(initial=0))
    if top >= num_classes:
        raise CardError(f"the model output class {top}, but the card names {num_classes} classes; set --classes")
    out = np.zeros((label_maps.shape[0], num_classes, *label_maps.shape[1:]), np.float32)
    np.put_along_axis(out, label_maps[:, None].astype(np.int64), 1.0, axis=1)
    return out


def foreground_probability(channel: np.ndarray, kind: str) -> np.ndarray:
    if kind == "sigmoid":
        return channel.astype(np.float32, copy=False)
    return (1.0 / (1.0 + np.exp(-channel))).astype(np.float32, copy=False)


def argmax_classes(output: np.ndarray) -> np.ndarray:
    """`np.argmax(output, axis=0)` (first maximum wins) in the smallest dtype, several times faster.

    numpy's argmax along the first axis walks memory with a large stride; here each class plane
    is read once, contiguously: the label of a pixel is the number of classes before its maximum.
    """
    best = output.max(axis=0)
    result = np.zeros(output.shape[1:], dtype=label_dtype(output.shape[0]))
    before_max = np.ones(output.shape[1:], dtype=bool)
    differs = np.empty_like(before_max)
    for plane in output[:-1]:
        np.not_equal(plane, best, out=differs)
        before_max &= differs
        result += before_max
    return result


def palette_image(label_map: np.ndarray, colors: Sequence[Color]) -> Image.Image:
    """A mode "P" image of `label_map` (< 256 classes) whose palette is `colors`."""
    if label_map.dtype != np.uint8:
        if label_map.size and int(label_map.max()) > 255:
            raise UsageError("a palette PNG holds at most 256 classes")
        label_map = label_map.astype(np.uint8)
    image = Image.fromarray(label_map)
    flat = [channel for rgb in list(colors)[:256] for channel in rgb]
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def overlay_image(image_rgb: np.ndarray, label_map: np.ndarray, colors: Sequence[Color], alpha: float = 0.5) -> Image.Image:
    """The image with class colours blended over it (RGB); class 0 (background) stays clear.

    `image_rgb` as `load_image` gives it (uint8, uint16 or float 0..1).
    """
    table = np.zeros((max(len(colors), int(label_map.max(initial=0)) + 1), 3), dtype=np.float32)
    table[: len(colors)] = np.asarray(colors, dtype=np.float32).reshape(-1, 3)
    base = np.clip(image_rgb.astype(np.float32) * np.float32(pixel_scale(image_rgb.dtype)), 0, 255)
    painted = label_map > 0
    base[painted] = (1.0 - alpha) * base[painted] + alpha * table[label_map[painted]]
    return Image.fromarray(np.round(base).astype(np.uint8))
