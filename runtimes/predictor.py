"""`Predictor`: what an app embeds. An image in, a class mask of the image's size out.

    from . import Predictor
    predictor = Predictor("model.onnx")
    mask = predictor.predict("photo.jpg")          # H x W uint8 class indices

One Predictor may be shared by any number of threads: it holds no per-call state, and ONNX
Runtime sessions are safe to run concurrently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .imaging import postprocess
from .model.card import ModelCard
from .errors import ModelFileError, UsageError
from .imaging.image import ImageLike, load_image
from .guards.isolate import probe_model
from .imaging.preprocess import (at_input_resolution, from_model_output, long_side_size, model_input_size, resize_plane, resize_rgb,
                         to_model_input)
from .backends.onnxruntime_providers import Provider
from .stream.labelling import label_maps
from .backends import (LabelsInGraph, ModelRunner, Runtime, RuntimeSpec, as_runtime, backend_for_path, chosen_backend,
                       open_runner)
from .imaging.tiling import plan_tiles, tiled_logits

Finish = Callable[[np.ndarray], np.ndarray]
# The most predict_proba holds in memory for one image; past it, `out=` (a memory-mapped .npy) or `predict`.
PROBA_BUDGET_BYTES = 2**30


class Predictor:
    """Run a segmentation ONNX model on images of any kind and size.

    `providers`: a segedge provider name ("cpu", "cuda", "auto", ...; default "cpu"); a provider
    that does not start is an error, never a silent CPU run. `threads`: ONNX Runtime's intra-op
    threads (default: the CPUs this process may use).
    `resize_long`: resize each image so that its longer side has this many pixels before the
    model sees it (the output is resized back); None pads to a size the model takes instead.
    `threshold`: foreground probability above which a one-channel model's pixel is labelled 1
    (default: the card's).
    `batch_size`: tiles (or images in `predict_batch`) per model run.
    `max_pixels`: replaces Pillow's decompression-bomb limit for the files this Predictor reads.
    `isolate`: for untrusted files, load the model and run it once in a child process under memory
    and time limits first (`runtimes.guards.isolate.probe_model`): a crash there is a `ModelFileError`.
    `card_overrides`: model card fields (mean, std, scale, color_order, classes, palette,
    output_kind, size_divisor, valid_margin, tile_size, tile_overlap, ...) replacing the card's;
    they describe a model exported elsewhere, which has no card. `tile_size` turns on tiling for
    images whose model input would be larger; without `tile_overlap`, tiles of a "same" model
    overlap by a quarter of the tile size, those of a valid-mode model by nothing (their margin
    already gives every output pixel its context).
    `runtime`: "onnxruntime" (`providers` chooses its execution provider) or "openvino", OpenVINO's
    own runtime (`segedge[openvino]`; opens .onnx and IR .xml files), or any runtime registered
    with `runtimes.backends.register_backend`; None (default) is the file's own, by its suffix:
    OpenVINO for an IR .xml, ONNX Runtime for an .onnx file. The keywords build `self.spec`, the
    `runtimes.backends.RuntimeSpec` the file is opened under. With OpenVINO,
    `openvino_hint` is its inference precision: "f32", "bf16", "f16" or None/"auto" (OpenVINO's
    choice, bf16 on CPUs with AVX512-BF16 or AMX). A file quantized for the other runtime warns
    (`runtimes.backends.RuntimeMismatchWarning`).
    `spinning`: False lets ONNX Runtime's idle intra-op threads spin only briefly (100 us) before
    they park, instead of ORT's long spin-wait: for `predict_stream` and other work beside the
    model (decoding, encoding) on a machine whose cores the model uses, so that threads waiting
    between runs leave those cores to it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Provider | str | None = None,
        threads: int | None = None,
        *,
        resize_long: int | None = None,
        threshold: float | None = None,
        batch_size: int = 4,
        max_pixels: int | None = None,
        isolate: bool = False,
        runtime: Runtime | str | None = None,
        openvino_hint: str | None = None,
        spinning: bool = True,
        **card_overrides: Any,
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise UsageError(f"threshold must lie in 0..1, got {threshold}")
        if resize_long is not None and resize_long < 1:
            raise UsageError(f"resize_long must be a positive number of pixels, got {resize_long}")
        self.spec = RuntimeSpec(runtime, providers or Provider.cpu, threads=threads, hint=openvino_hint, spinning=spinning)
        self.runtime: Runtime | str = as_runtime(chosen_backend(path, runtime).name)
        if isolate and backend_for_path(path).name != Runtime.onnxruntime:
            raise UsageError("isolate probes the model with ONNX Runtime in a child process: give the .onnx file")
        if isolate:  # an untrusted file: it must survive loading and one run in a limited child first
            probe_model(path, self.spec.provider)
        overrides = {key: _tuples(value) for key, value in card_overrides.items()}
        self.session: ModelRunner = open_runner(path, self.spec, overrides)
        card = self.session.card
        if not card.dynamic and card.tile_size is None and card.large_image == "tile":
            # A static model takes one size: larger images are cut into tiles of exactly that size
            # (or, where its card says large_image "resize", shrunk to fit it: `resize_for`).
            card = card.with_overrides(tile_size=max(card.input_size))
        self.card: ModelCard = card
        self.resize_long = resize_long
        self.threshold = self.card.threshold if threshold is None else threshold
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.tile_overlap = _default_overlap(self.card, "tile_overlap" in card_overrides)

    @property
    def providers(self) -> tuple[str, ...]:
        """The ONNX Runtime providers really active (OpenVINO: its device and inference precision)."""
        return self.session.active_providers

    # -- public API ---------------------------------------------------------------------------
    def predict(self, image: ImageLike) -> np.ndarray:
        """H x W label map (uint8; uint16 beyond 256 classes), the size of `image`."""
        rgb = load_image(image, max_pixels=self.max_pixels)
        in_graph = self._labels_in_graph(rgb)
        return in_graph if in_graph is not None else self._predict(rgb, self._labels)

    def predict_proba(self, image: ImageLike, out: np.ndarray | None = None) -> np.ndarray:
        """C x H x W float32 class probabilities (2 x H x W for a one-channel model).

        That is 4 C bytes per pixel. `out`: a C x H x W float32 array to write them into, e.g. a
        memory-mapped .npy (`np.lib.format.open_memmap`, as `segedge predict --proba` does): a tiled
        image streams into it block by block, so its probabilities never need to fit in memory.
        Without `out`, probabilities over `PROBA_BUDGET_BYTES` are refused, pointing to `predict`.
        """
        rgb = load_image(image, max_pixels=self.max_pixels)
        shape = self.probability_shape(rgb)
        fits = out is None or (out.shape[1:] == shape[1:] and shape[0] in (0, out.shape[0]) and out.dtype == np.float32)
        if not fits:
            assert out is not None
            raise UsageError(f"out must be a {' x '.join(map(str, shape))} float32 array, got {out.shape} {out.dtype}")
        if out is None and self.card.num_classes and 4 * int(np.prod(shape)) > PROBA_BUDGET_BYTES:
            raise UsageError(
                f"the probabilities of this {shape[1]} x {shape[2]} image would take {4 * np.prod(shape) / 2**30:.1f} GB "
                f"({shape[0]} classes, float32), over the {PROBA_BUDGET_BYTES / 2**30:g} GB predict_proba holds in "
                "memory: use predict for the label map, or pass out= a memory-mapped array (np.lib.format.open_memmap)"
            )
        return self._predict(rgb, self._probabilities, out)

    def probability_shape(self, image: np.ndarray) -> tuple[int, int, int]:
        """C x H x W of `predict_proba(image)` for an image as `load_image` gives it (C 0: not known before a run)."""
        return (self.card.num_classes, *_size(image))

    def predict_batch(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """Label maps of several images; images whose model inputs agree in size share model runs."""
        pixels = [load_image(image, max_pixels=self.max_pixels) for image in images]
        results: list[np.ndarray | None] = [None] * len(pixels)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, rgb in enumerate(pixels):
            if self._tile_size_for(rgb) is not None:
                results[i] = self._predict(rgb, self._labels)
            else:
                groups.setdefault(model_input_size(_size(rgb), self.card, self.resize_for(rgb))[1], []).append(i)
        for members in groups.values():
            for first in range(0, len(members), self.batch_size):
                chunk = members[first : first + self.batch_size]
                prepared = [to_model_input(pixels[i], self.card, resize_long=self.resize_for(pixels[i])) for i in chunk]
                outputs = self._run(np.stack([x for x, _ in prepared]))
                for i, output, (_, placement) in zip(chunk, outputs, prepared):
                    results[i] = self._labels(from_model_output(output, placement))
        return results  # type: ignore[return-value]

    def predict_stream(self, frames: Iterable[ImageLike], *, smoothing: float = 0.0, depth: int = 2) -> Iterator[np.ndarray]:
        """Label maps of a stream of images (video frames, a camera), in order, as they are ready.

        Reading, pre-processing, the model and labelling run at once in threads joined by queues of
        `depth` items (`runtimes.stream.labelling`): a slow consumer holds the frames back, nothing
        piles up. `smoothing` (0..1, default 0: off) averages each frame's class probabilities with
        the previous frames' (exponential moving average) to steady flickering labels; off, each
        mask equals `predict(frame)` exactly.
        """
        return label_maps(self, frames, smoothing=smoothing, depth=depth)

    # -- one image ----------------------------------------------------------------------------
    def _predict(self, rgb: np.ndarray, finish: Finish, out: np.ndarray | None = None) -> np.ndarray:
        tile_size = self._tile_size_for(rgb)
        if tile_size is None:
            x, placement = to_model_input(rgb, self.card, resize_long=self.resize_for(rgb))
            return _into(out, finish(from_model_output(self._run(x[None])[0], placement)))
        size = _size(rgb)
        scaled_size, _ = model_input_size(size, self.card, self.resize_for(rgb))
        scaled = rgb if scaled_size == size else resize_rgb(rgb, scaled_size)
        grid = plan_tiles(scaled_size, self.card, tile_size, self.tile_overlap)
        blocks = tiled_logits(scaled, self.card, grid, self._run, self.batch_size)
        if scaled_size == size:  # each block finished (labels, probabilities) as it comes: no whole-image logits
            return _assemble(((top, left, finish(block)) for top, left, block in blocks), size, out)
        logits = _assemble(blocks, scaled_size)
        return _into(out, finish(np.stack([resize_plane(plane, size) for plane in logits])))

    def resize_for(self, rgb: np.ndarray) -> int | None:
        """The longer side this image is resized to before the model sees it: `resize_long`, and for a static
        model whose card says large_image "resize", at most the longest side that fits the model's input;
        None: the image's own size."""
        card = self.card
        if card.dynamic or card.large_image != "resize":
            return self.resize_long
        h, w = _size(rgb)
        room = (card.input_size[0] - 2 * card.valid_margin, card.input_size[1] - 2 * card.valid_margin)
        fits = max(1, int(max(h, w) * min(room[0] / h, room[1] / w)))
        while fits > 1 and any(s > r for s, r in zip(long_side_size((h, w), fits), room)):
            fits -= 1  # rounding in long_side_size may overshoot by a pixel
        if self.resize_long is not None:
            return min(self.resize_long, fits)
        return fits if h > room[0] or w > room[1] else None

    def plan(self, image: ImageLike) -> str:
        """What predicting `image` does to fit the model, in words: "as is", "tiled: ..." or "resized: ..."."""
        rgb = load_image(image, max_pixels=self.max_pixels)
        size, resize = _size(rgb), self.resize_for(rgb)
        scaled = model_input_size(size, self.card, resize)[0]
        tile = self._tile_size_for(rgb)
        parts = [f"resized {size[0]} x {size[1]} -> {scaled[0]} x {scaled[1]}"] if scaled != size else []
        if tile is not None:
            grid = plan_tiles(scaled, self.card, tile, self.tile_overlap)
            parts.append(f"tiled: {grid.count} tiles of {grid.input_size[0]} x {grid.input_size[1]}")
        elif not self.card.dynamic and scaled != self.card.input_size:
            parts.append(f"padded to {self.card.input_size[0]} x {self.card.input_size[1]}")
        return "; ".join(parts) or "as is"

    def _tile_size_for(self, rgb: np.ndarray) -> int | None:
        """The tile size when this image's model input would be larger than a tile, else None."""
        tile = self.card.tile_size
        if tile is None:
            return None
        if not self.card.dynamic:  # tiles of the model's one size, when the image does not fit in one
            scaled = model_input_size(_size(rgb), self.card, self.resize_for(rgb))[0]
            room = [side - 2 * self.card.valid_margin for side in self.card.input_size]
            return tile if scaled[0] > room[0] or scaled[1] > room[1] else None
        h, w = model_input_size(_size(rgb), self.card, self.resize_for(rgb))[1]
        return tile if max(h, w) > tile else None

    def _labels_in_graph(self, rgb: np.ndarray) -> np.ndarray | None:
        """The label map with the argmax run inside the runtime's compiled model (OpenVINO's adapter: no
        C x H x W scores written out and scanned again); None where the runtime cannot, or the image is
        tiled or resized (their scores are blended or resized before labelling)."""
        session = self.session
        if not isinstance(session, LabelsInGraph) or self.resize_for(rgb) is not None or self._tile_size_for(rgb) is not None:
            return None
        x, placement = to_model_input(rgb, self.card)
        labels = session.labels(np.ascontiguousarray(x[None]))
        margin = self.card.valid_margin
        if labels is None or labels.shape[1:] != (x.shape[1] - 2 * margin, x.shape[2] - 2 * margin):
            return None  # the scores' path says what is wrong with the output
        return from_model_output(labels, placement)[0]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """The model's scores for a batch, at the input's resolution less the valid margin."""
        output = self.session.run(np.ascontiguousarray(batch))
        margin, stride = self.card.valid_margin, self.card.output_stride
        full = (batch.shape[2] - 2 * margin, batch.shape[3] - 2 * margin)
        expected = (-(-full[0] // stride), -(-full[1] // stride))
        if output.ndim != 4 or output.shape[2:] != expected:
            raise ModelFileError(
                f"{self.session.path}: a {batch.shape[2]} x {batch.shape[3]} input gave an output of shape "
                f"{output.shape}, expected N x C x {expected[0]} x {expected[1]}; set --size-divisor (or the "
                "card's output_stride / valid_margin) to describe the model"
            )
        if stride > 1:  # logits at 1/stride (SegFormer's 1/4): bilinear to the input's size, as its authors do
            output = np.stack([at_input_resolution(item, self.card, batch.shape[2:]) for item in output])
        return output

    def _labels(self, output: np.ndarray) -> np.ndarray:
        return postprocess.labels(output, self.card.output_kind, self.threshold)

    def _probabilities(self, output: np.ndarray) -> np.ndarray:
        return postprocess.probabilities(output, self.card.output_kind)


def _size(rgb: np.ndarray) -> tuple[int, int]:
    return int(rgb.shape[0]), int(rgb.shape[1])


def _tuples(value: Any) -> Any:
    """Lists (e.g. from JSON or a CLI) -> the tuples a card holds, nested ones included."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _default_overlap(card: ModelCard, given: bool) -> int:
    if given or card.tile_overlap > 0 or card.tile_size is None or card.valid_margin > 0:
        return card.tile_overlap
    return card.tile_size // 4


def _assemble(blocks: Iterator[tuple[int, int, np.ndarray]], size: tuple[int, int],
              out: np.ndarray | None = None) -> np.ndarray:
    """Place blocks (..., rows, cols) at (top, left) into one (..., H, W) array: `out`, or a new one."""
    result = out
    for top, left, block in blocks:
        if result is None:
            result = np.empty(block.shape[:-2] + size, dtype=block.dtype)
        result[..., top : top + block.shape[-2], left : left + block.shape[-1]] = block
    assert result is not None  # a grid has at least one tile
    return result


def _into(out: np.ndarray | None, result: np.ndarray) -> np.ndarray:
    if out is None:
        return result
    out[...] = result
    return out
