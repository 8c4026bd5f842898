"""Tiled inference for images larger than the model should see at once.

The image is cut into overlapping tiles of the model's input size; each tile's output is
weighted by a window that falls smoothly to (almost) zero towards the tile's edges, where its
receptive field is cut, and the weighted logits are summed and divided by the summed weights.
Tiles are batched along a row of tiles. A block of the image is blended and handed out as soon
as no later tile can reach it; what stays open is one tile's worth of columns and the rows the
next row of tiles overlaps, so memory grows with the overlap times the image's width, never with
its area times the classes (108 MP at 21 classes: benchmarks/results/memory.md).

Tile starts are multiples of the card's `size_divisor`, so every tile sees the stride grid the
whole image would see. Pixels outside the image are the image mirrored at its border. For a
valid-mode model (`valid_margin` m > 0) a tile of input side t gives an output of t - 2m whose
context comes from the m pixels around it: the U-Net paper's overlap-tile strategy, with mirror
extrapolation where the context lies outside the image; such tiles need no overlap to be seamless.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..backends.run_batch import RunBatch
from ..model.card import ModelCard
from ..errors import ModelFileError, UsageError
from .preprocess import model_side, model_window

_WEIGHT_FLOOR = 1e-3  # keeps tile borders at the image border from dividing by ~0
TILE_BATCH_BYTES = 128 * 2**20  # the most tile outputs one model run gives, unless a single tile is more


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
    last = -(-(side - tile_out) // d) * d  # the last tile reaches the border, its start still on the grid
    return tile_in, _evenly(last, -(-last // step), d)


def _evenly(last: int, steps: int, d: int) -> tuple[int, ...]:
    """`steps` + 1 starts from 0 to `last` on the d grid, as evenly apart as the grid allows.

    No step is longer than `last / steps` rounded up to d, so every overlap is at least the one
    asked for; evenly spread, no pair of tiles overlaps by most of a tile (which a last tile moved
    back to the border did), and the rows left open for the next row of tiles stay few.
    """
    units, extra = divmod(last // d, steps)
    starts, at = [0], 0
    for i in range(steps):
        at += (units + (1 if i < extra else 0)) * d
        starts.append(at)
    return tuple(starts)


def tile_weights(size: int, overlap: int) -> np.ndarray:
    """1-D blending window: 1 inside, a raised-cosine ramp over `overlap` pixels at both ends."""
    if overlap <= 0:
        return np.ones(size, dtype=np.float32)
    i = np.arange(size, dtype=np.float64)
    ramp = np.minimum(1.0, np.minimum(i + 0.5, size - i - 0.5) / overlap)
    return np.maximum(0.5 - 0.5 * np.cos(np.pi * ramp), _WEIGHT_FLOOR).astype(np.float32)


def tiled_logits(
    image_rgb: np.ndarray, card: ModelCard, grid: TileGrid, run: RunBatch, batch_size: int = 4
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Blend the tiles' outputs; yield (first row, first column, C x rows x cols block), row by row.

    The blocks tile the image exactly once, each as soon as no later tile can reach it. Held at a
    time: one batch of tile outputs, the open columns of one tile (C x tile), and the rows the next
    row of tiles still adds to (C x vertical overlap x image width) — never a band of whole tiles
    across the image, nor the logits of the whole image.
    """
    height, width = grid.image_size
    h, w = grid.output_size
    window = np.outer(tile_weights(h, grid.overlap), tile_weights(w, grid.overlap))
    # Large tiles of many classes run fewer at a time: a batch's outputs (and the runtime's buffers
    # for them, which it keeps) stay near TILE_BATCH_BYTES; 4 tiles of 1024 px at 21 classes are 350 MB.
    batch_size = max(1, min(batch_size, TILE_BATCH_BYTES // (4 * max(1, card.num_classes) * h * w)))
    columns: _Columns | None = None
    carry: _Carry | None = None
    for i, top in enumerate(grid.rows):
        end = grid.rows[i + 1] if i + 1 < len(grid.rows) else height  # rows [top, end) are final after this row
        bottom = min(top + h, height)
        if columns is not None:
            columns.reset()
        for lefts, outputs in _run_row(image_rgb, card, grid, top, run, batch_size):
            if columns is None or carry is None:  # the class count is known from the first tiles
                columns = _Columns(outputs.shape[1], h, w)
                carry = _Carry(outputs.shape[1], _carry_rows(grid), width)
            for left, output in zip(lefts, outputs):
                columns.slide_to(left)
                columns.add(output, window)
                j = grid.cols.index(left)
                right = grid.cols[j + 1] if j + 1 < len(grid.cols) else width  # columns before it are final
                first = columns.done
                block = carry.finish(columns, top, end, bottom, min(right, width))
                yield top, first, block
                del block
            del outputs  # dropped before the next batch is run, not after
        assert carry is not None  # every row of tiles has at least one tile
        carry.rows = bottom - end


def _carry_rows(grid: TileGrid) -> int:
    """The most rows a row of tiles leaves open for the next: its output height less the step."""
    bottoms = [min(top + grid.output_size[0], grid.image_size[0]) for top in grid.rows]
    ends = [*grid.rows[1:], grid.image_size[0]]
    return max(0, *(b - e for b, e in zip(bottoms, ends)))


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
        del batch, outputs  # the next batch is made before this one would be dropped otherwise


class _Columns:
    """Weighted sums (and summed weights) of the current row of tiles over columns [left, left + w).

    Columns before `done` are handed out; the ones from `done` on are still open.
    """

    def __init__(self, channels: int, rows: int, width: int) -> None:
        self.sums = np.zeros((channels, rows, width), dtype=np.float32)
        self.weights = np.zeros((rows, width), dtype=np.float32)
        self.left = self.done = 0
        self._product = np.empty((rows, width), dtype=np.float32)

    def reset(self) -> None:
        """Empty, at column 0: for the next row of tiles (the buffer is reused, not made again)."""
        self.sums[...] = 0
        self.weights[...] = 0
        self.left = self.done = 0

    def slide_to(self, left: int) -> None:
        """Start the buffer at column `left`, in place: the open columns move to its start, the rest are zeroed."""
        shift = left - self.left
        if shift == 0:
            return
        keep = max(0, self.weights.shape[1] - shift)
        self.sums[:, :, :keep] = self.sums[:, :, shift : shift + keep]
        self.weights[:, :keep] = self.weights[:, shift : shift + keep]
        self.sums[:, :, keep:] = 0
        self.weights[:, keep:] = 0
        self.left = left

    def add(self, output: np.ndarray, window: np.ndarray) -> None:
        """Add one tile's C x h x w output at `left`, weighted by `window`; one plane at a time, no C x h x w copy."""
        for plane, out in zip(self.sums, output):
            np.multiply(out, window, out=self._product)
            plane += self._product
        self.weights += window


class _Carry:
    """What earlier rows of tiles added to the rows the current row starts on: C x rows x image width."""

    def __init__(self, channels: int, rows: int, width: int) -> None:
        self.sums = np.zeros((channels, rows, width), dtype=np.float32)
        self.weights = np.zeros((rows, width), dtype=np.float32)
        self.rows = 0  # image rows [top, top + rows) of the current row of tiles hold earlier contributions

    def finish(self, columns: _Columns, top: int, end: int, bottom: int, right: int) -> np.ndarray:
        """Columns [columns.done, right): rows [top, end) blended (returned); rows [end, bottom) carried on.

        The carry's columns are read (rows below `top`) before they are overwritten (rows below
        `end`), column range by column range, so one buffer serves both rows of tiles.
        """
        a, b = columns.done - columns.left, right - columns.left
        sums, weights = columns.sums[:, :, a:b], columns.weights[:, a:b]
        c0, c1 = columns.done, right
        if self.rows:
            sums[:, : self.rows] += self.sums[:, : self.rows, c0:c1]
            weights[: self.rows] += self.weights[: self.rows, c0:c1]
        final, carried = end - top, bottom - end
        if carried > 0:
            self.sums[:, :carried, c0:c1] = sums[:, final : final + carried]
            self.weights[:carried, c0:c1] = weights[final : final + carried]
        columns.done = right
        return sums[:, :final] / weights[:final]
