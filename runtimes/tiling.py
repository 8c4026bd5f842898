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
    if not card.dynamic:  # a static model: tiles of exactly its size, anywhere on the image
        tile_in = card.input_size[axis]
        tile_out = tile_in - 2 * margin
        if side <= tile_out:
            return tile_in, (0,)
        step = tile_out - overlap
        if step < 1:
            raise UsageError(f"a {overlap} px overlap leaves no room to advance tiles of {tile_in} px")
        return tile_in, tuple(list(range(0, side - tile_out, step)) + [side - tile_out])
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

    The blocks tile the image's rows exactly once. Held at a time: one band of rows (a tile's
    output height, the image's width) and one batch of tiles.
    """
    height = grid.image_size[0]
    window = np.outer(tile_weights(grid.output_size[0], grid.overlap), tile_weights(grid.output_size[1], grid.overlap))
    band: _Band | None = None
    for i, top in enumerate(grid.rows):
        for lefts, outputs in _run_row(image_rgb, card, grid, top, run, batch_size):
            if band is None:
                band = _Band(outputs.shape[1], grid.output_size[0], grid.image_size[1], top)
            band.slide_to(top)
            for left, output in zip(lefts, outputs):
                band.add(left, output, window)
        # Rows above the next row of tiles are final: no later tile reaches them.
        end = grid.rows[i + 1] if i + 1 < len(grid.rows) else height
        assert band is not None  # every row of tiles has at least one tile
        yield top, band.blended(end - top)


def _run_row(
    image_rgb: np.ndarray, card: ModelCard, grid: TileGrid, top: int, run: RunBatch, batch_size: int
) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """(first columns, N x C x h x w outputs) of one row of tiles, `batch_size` tiles at a time."""
    m = grid.margin
    for first in range(0, len(grid.cols), batch_size):
        lefts = grid.cols[first : first + batch_size]
        batch = np.stack([model_window(image_rgb, top - m, left - m, grid.input_size, card) for left in lefts])
        outputs = run(batch)
        if outputs.ndim != 4 or outputs.shape[0] != len(lefts) or outputs.shape[2:] != grid.output_size:
            raise ModelFileError(
                f"a {grid.input_size[0]} x {grid.input_size[1]} tile gave an output of shape {outputs.shape}, "
                f"expected N x C x {grid.output_size[0]} x {grid.output_size[1]}; check the card's "
                f"size_divisor ({card.size_divisor}) and valid_margin ({card.valid_margin})"
            )
        yield lefts, outputs


class _Band:
    """Weighted sums of tile outputs (and the sums of their weights) over image rows [top, top + rows)."""

    def __init__(self, channels: int, rows: int, width: int, top: int) -> None:
        self.top = top
        self.sums = np.zeros((channels, rows, width), dtype=np.float32)
        self.weights = np.zeros((rows, width), dtype=np.float32)

    def slide_to(self, top: int) -> None:
        """Start the band at row `top`, in place: rows still open move up, the new ones start at 0."""
        shift, rows = top - self.top, self.weights.shape[0]
        if shift == 0:
            return
        keep = max(0, rows - shift)
        # Overlapping copies are buffered by numpy; the buffer is only the `keep` open rows.
        self.sums[:, :keep] = self.sums[:, shift : shift + keep]
        self.weights[:keep] = self.weights[shift : shift + keep]
        self.sums[:, keep:] = 0
        self.weights[keep:] = 0
        self.top = top

    def add(self, left: int, output: np.ndarray, window: np.ndarray) -> None:
        """Add one tile's C x h x w output, weighted by `window`, at column `left` (cut at the image's edge)."""
        w = min(window.shape[1], self.weights.shape[1] - left)
        self.sums[:, :, left : left + w] += output[:, :, :w] * window[:, :w]
        self.weights[:, left : left + w] += window[:, :w]

    def blended(self, rows: int) -> np.ndarray:
        """The first `rows` rows, finished: weighted sums divided by summed weights (a new array)."""
        return self.sums[:, :rows] / self.weights[:rows]
