"""Tiled inference for images larger than the model should see at once.

The image is cut into overlapping tiles of the model's input size; each tile's output is
weighted by a window that falls smoothly to (almost) zero towards the tile's edges, where its
receptive field is cut, and the weighted logits are summed and divided by the summed weights.
Tiles are batched along a row of tiles, and the sums are kept only for the band of image rows
that the current row of tiles touches: finished rows are handed out as soon as no later tile can
reach them, so memory grows with the image's width, never with its area times the classes.

Tile starts are multiples of the card's `size_divisor`, so every tile sees the stride grid the
whole image would see. Pixels outside the image are the image mirrored at its border. For a
valid-mode model (`valid_margin` m > 0) a tile of input side t gives an output of t - 2m whose
context comes from the m pixels around it: the U-Net paper's overlap-tile strategy, with mirror
extrapolation where the context lies outside the image; such tiles need no overlap to be seamless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .card import ModelCard
from .errors import ModelFileError, UsageError
from .preprocess import model_side, model_window

RunBatch = Callable[[np.ndarray], np.ndarray]
"""N x 3 x h x w float32 model inputs -> N x C x (h - 2m) x (w - 2m) float32 outputs."""

_WEIGHT_FLOOR = 1e-3  # keeps tile borders at the image border from dividing by ~0


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one image lie, in image (output) coordinates."""

    image_size: tuple[int, int]
    input_size: tuple[int, int]  # each tile's model input, H x W
    output_size: tuple[int, int]  # each tile's output: input_size - 2 * margin
    margin: int
    overlap: int
    rows: tuple[int, ...]  # first image row of each row of tiles
    cols: tuple[int, ...]  # first image column of each column of tiles

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)


def plan_tiles(image_size: tuple[int, int], card: ModelCard, tile_size: int, overlap: int) -> TileGrid:
    """Tiles of (at most) `tile_size` input pixels a side, overlapping by `overlap` output pixels.

    Along a side shorter than a tile the one tile is the whole side, padded as without tiling.
    """
    if tile_size < 1 or overlap < 0:
        raise UsageError(f"tile size must be >= 1 and overlap >= 0, got {tile_size} and {overlap}")
    sizes, starts = [], []
    for axis, side in enumerate(image_size):
        tile_in, positions = _plan_axis(side, card, tile_size, overlap, axis)
        sizes.append(tile_in)
        starts.append(positions)
    margin = card.valid_margin
    return TileGrid(
        image_size=image_size,
        input_size=(sizes[0], sizes[1]),
        output_size=(sizes[0] - 2 * margin, sizes[1] - 2 * margin),
        margin=margin,
        overlap=overlap,
        rows=starts[0],
        cols=starts[1],
    )


def _plan_axis(side: int, card: ModelCard, tile_size: int, overlap: int, axis: int) -> tuple[int, tuple[int, ...]]:
    d, margin = card.size_divisor, card.valid_margin
    whole = model_side(side + 2 * margin, card, axis)
    if whole <= tile_size:
        return whole, (0,)
    tile_in = model_side(tile_size - d + 1, card, axis)  # the largest side <= tile_size the model takes
    tile_out = tile_in - 2 * margin
    step = (tile_out - overlap) // d * d
    if tile_in > tile_size or step < d:
        raise UsageError(
            f"tiles of {tile_size} px with {overlap} px overlap leave no room to advance for this model "
            f"(size divisor {d}, valid margin {margin}); use larger tiles or a smaller overlap"
        )
    starts = list(range(0, side - tile_out, step))
    last = -(-(side - tile_out) // d) * d  # the last tile reaches the border, its start still on the grid
    return tile_in, tuple(starts + [last])


def tile_weights(size: int, overlap: int) -> np.ndarray:
    """1-D blending window: 1 inside, a raised-cosine ramp over `overlap` pixels at both ends."""
    if overlap <= 0:
        return np.ones(size, dtype=np.float32)
    i = np.arange(size, dtype=np.float64)
    ramp = np.minimum(1.0, np.minimum(i + 0.5, size - i - 0.5) / overlap)
    return np.maximum(0.5 - 0.5 * np.cos(np.pi * ramp), _WEIGHT_FLOOR).astype(np.float32)


def tiled_logits(
    image_rgb: np.ndarray, card: ModelCard, grid: TileGrid, run: RunBatch, batch_size: int = 4
) -> Iterator[tuple[int, np.ndarray]]:
    """Blend the tiles' outputs; yield (first row, C x rows x W block) from top to bottom.

    The blocks tile the image's rows exactly once. Only one band of rows (a tile's output height)
    is held at a time, plus one batch of tiles.
    """
    height, width = grid.image_size
    out_h, out_w = grid.output_size
    window = np.outer(tile_weights(out_h, grid.overlap), tile_weights(out_w, grid.overlap))
    band_top, band, band_weight = 0, None, None
    for i, top in enumerate(grid.rows):
        outputs = _run_row(image_rgb, card, grid, top, run, batch_size)
        if band is None:
            band = np.zeros((outputs[0].shape[0], out_h, width), dtype=np.float32)
            band_weight = np.zeros((out_h, width), dtype=np.float32)
        band, band_weight = _slide(band, band_weight, top - band_top, out_h)
        band_top = top
        for left, output in zip(grid.cols, outputs):
            w = min(out_w, width - left)
            band[:, :, left : left + w] += output[:, :, :w] * window[:, :w]
            band_weight[:, left : left + w] += window[:, :w]
        done = (grid.rows[i + 1] if i + 1 < len(grid.rows) else height) - band_top
        done = min(done, height - band_top)
        yield band_top, band[:, :done] / band_weight[:done]


def _run_row(image_rgb: np.ndarray, card: ModelCard, grid: TileGrid, top: int, run: RunBatch, batch_size: int) -> list[np.ndarray]:
    """The outputs of one row of tiles, run `batch_size` tiles at a time."""
    m = grid.margin
    outputs: list[np.ndarray] = []
    for first in range(0, len(grid.cols), batch_size):
        lefts = grid.cols[first : first + batch_size]
        batch = np.stack([model_window(image_rgb, top - m, left - m, grid.input_size, card) for left in lefts])
        result = run(batch)
        if result.ndim != 4 or result.shape[0] != len(lefts) or result.shape[2:] != grid.output_size:
            raise ModelFileError(
                f"a {grid.input_size[0]} x {grid.input_size[1]} tile gave an output of shape {result.shape}, "
                f"expected N x C x {grid.output_size[0]} x {grid.output_size[1]}; check the card's "
                f"size_divisor ({card.size_divisor}) and valid_margin ({card.valid_margin})"
            )
        outputs.extend(result)
    return outputs


def _slide(band: np.ndarray, weight: np.ndarray, shift: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Move the band down by `shift` rows, in place: the rows still open move up, the rest start at 0."""
    keep = max(0, rows - shift)
    if shift > 0:
        # Overlapping copies are buffered by numpy; the buffer is only the `keep` open rows.
        band[:, :keep] = band[:, shift : shift + keep]
        weight[:keep] = weight[shift : shift + keep]
        band[:, keep:] = 0
        weight[keep:] = 0
    return band, weight
