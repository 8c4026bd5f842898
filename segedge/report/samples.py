"""Sample images for the HTML pages: per row, a few images' label maps as thumbnails, kept while accuracy is measured.

Every row (a precision x runtime of `segedge report`, a model of `segedge eval`) runs on one pool
of images, and each label map it makes is handed to `SampleBook.add` as it is made, so that no
model runs twice. Per row the book keeps the images where the row's map differs most from the
reference's, and a fixed few (the first of the pool, the same for every row, so that rows can be
compared side by side); every other map is counted and dropped. The reference is one row's maps
(the report's PyTorch fp32, added first and kept compressed) or the ground-truth masks (eval).
Pixels are counted at the resolution the row ran at; only what is shown is shrunk, to at most
`thumb_side` pixels a side.
"""

from __future__ import annotations

import heapq
import io
import itertools
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from runtimes.errors import UsageError
from runtimes.imaging.image import load_image
from runtimes.measure.metrics import ConfusionMatrix
from runtimes.imaging.palette import Color
from runtimes.imaging.postprocess import palette_image
from runtimes.imaging.preprocess import long_side_size, pixel_scale
from runtimes.measure.metrics import IGNORE_INDEX
from segedge.data.labelled import read_mask

DEFAULT_SAMPLES = 4
THUMB_SIDE = 256
FIXED = 2  # images every row shows, whatever it gets wrong
AGREE = 255  # the disagreement map's index where the maps agree (or the label is ignored)
AGREE_COLOR: Color = (255, 255, 255)  # white: VOC's background is black, and pixels a row wrongly calls background must show
MAX_CLASSES = 255  # a palette PNG holds 256 colours, and the disagreement map needs one for AGREE

T = TypeVar("T")
PoolItem = tuple[Path, "Path | None"]  # an image and its ground-truth mask, if any


@dataclass(frozen=True)
class Sample:
    """One image of one row's strip: the counts at full resolution, the pictures as PNG thumbnails."""

    index: int  # position in the pool
    name: str
    wrong: int  # pixels where the row's map differs from the reference
    pixels: int  # pixels compared (ground truth's ignored pixels left out)
    size: tuple[int, int]  # the thumbnails' H x W
    mask: bytes  # the row's label map
    diff: bytes  # the row's classes where it differs from the reference; AGREE_COLOR elsewhere

    @property
    def wrong_fraction(self) -> float:
        return self.wrong / self.pixels if self.pixels else 0.0


@dataclass
class RowSamples:
    """What the book keeps of one row."""

    label: str
    between: ConfusionMatrix  # reference (rows) x this row (columns), over the whole pool
    vs_labels: ConfusionMatrix | None  # ground truth x this row at the masks' size (report with labels)
    fixed: list[Sample] = field(default_factory=list)
    worst: list[tuple[int, int, Sample]] = field(default_factory=list)  # heap of (wrong, -index, sample)

    @property
    def samples(self) -> list[Sample]:
        """The fixed few in pool order, then the most wrong first."""
        return sorted(self.fixed, key=lambda s: s.index) + [s for _, _, s in sorted(self.worst, reverse=True)]

    @property
    def wrong(self) -> int:
        m = self.between.matrix
        return int(m.sum() - np.trace(m))

    @property
    def pixels(self) -> int:
        return int(self.between.matrix.sum())


class SampleBook:
    """Collects rows' label maps on a pool of images; keeps at most `limit` thumbnails per row."""

    def __init__(self, limit: int = DEFAULT_SAMPLES, thumb_side: int = THUMB_SIDE) -> None:
        if limit < 0 or thumb_side < 8:
            raise UsageError(f"samples must be >= 0 and thumbnails >= 8 pixels, got {limit} and {thumb_side}")
        self.limit = limit
        self.thumb_side = thumb_side
        self.fixed = min(FIXED, limit // 2)
        self.pool: list[PoolItem] = []
        self.source = ""  # where the pool came from, for the page
        self.reference: str | None = None  # the row the others are compared with; None: the ground truth
        self.classes: tuple[str, ...] = ()
        self.colors: tuple[Color, ...] = ()
        self.note = ""  # why the page shows no pictures, when it cannot
        self.rows: dict[str, RowSamples] = {}
        self.inputs: dict[int, bytes] = {}  # JPEG thumbnails of the pool images some row keeps
        self.truths: dict[int, bytes] = {}
        self.references: dict[int, bytes] = {}
        self._reference_maps: dict[int, tuple[tuple[int, ...], np.dtype, bytes]] = {}
        self._uses: Counter[int] = Counter()

    # -- filling ---------------------------------------------------------------------------------
    def start(self, pool: Sequence[PoolItem], classes: Sequence[str], colors: Sequence[Color], source: str,
              reference: str | None) -> None:
        """The pool every row runs on, in order; `reference` is the label of the row added first (None: ground truth)."""
        self.pool, self.source, self.reference = list(pool), source, reference
        if reference is None and any(mask is None for _, mask in self.pool):
            raise UsageError("samples against the ground truth need a mask for every image")
        self.classes = tuple(classes)
        self.colors = tuple(colors)[:MAX_CLASSES]
        if len(self.classes) > MAX_CLASSES:
            self.note = f"{len(self.classes)} classes do not fit a palette image: no sample pictures"

    @property
    def started(self) -> bool:
        return bool(self.pool)

    @property
    def drawing(self) -> bool:
        return self.limit > 0 and not self.note

    @property
    def labelled(self) -> bool:
        return bool(self.pool) and all(mask is not None for _, mask in self.pool)

    def observed(self, label: str, to_labels: Callable[[T], np.ndarray], run: Callable[[np.ndarray], T]) -> Callable[[np.ndarray], T]:
        """`run`, which is called on the pool's images in order, also adding each result's label map to the book."""
        counter = itertools.count()

        def watched(x: np.ndarray) -> T:
            result = run(x)
            self.add(label, next(counter), to_labels(result))
            return result

        return watched

    def add(self, label: str, index: int, label_map: np.ndarray) -> None:
        """Row `label`'s label map of pool image `index`."""
        mask_path = self.pool[index][1]
        n = max(2, len(self.classes))
        if label_map.size and int(label_map.max()) >= n:
            raise UsageError(f"{label} predicts class {int(label_map.max())}, but the page's models have {n} classes")
        row = self._row(label)
        if self.reference is None:
            assert mask_path is not None  # start() refused a pool without masks
            reference = read_mask(mask_path)
            valid = (reference != IGNORE_INDEX) & (reference < max(2, len(self.classes)))
        else:
            if label == self.reference:
                self._reference_maps[index] = (label_map.shape, label_map.dtype, zlib.compress(label_map.tobytes(), 1))
            reference, valid = self._reference_map(index), None
            if mask_path is not None:  # as `report.accuracy.mean_iou` measures it: the map resized to the mask
                truth = read_mask(mask_path)
                assert row.vs_labels is not None
                row.vs_labels.update(truth, _nearest(label_map, truth.shape))
        row.between.update(reference, label_map)
        if self.drawing and label != self.reference:  # the reference's own strip would show no difference
            differ = reference != label_map
            if valid is not None:
                differ &= valid
            self._consider(row, index, label_map, reference, differ, int(differ.size if valid is None else valid.sum()))

    def _row(self, label: str) -> RowSamples:
        if label not in self.rows:
            n = max(2, len(self.classes))
            ignore = IGNORE_INDEX if self.reference is None else None  # two models' maps: nothing to ignore
            vs_labels = ConfusionMatrix(n, IGNORE_INDEX) if self.reference is not None and self.labelled else None
            self.rows[label] = RowSamples(label, ConfusionMatrix(n, ignore), vs_labels)
        return self.rows[label]

    def _reference_map(self, index: int) -> np.ndarray:
        if index not in self._reference_maps:
            raise RuntimeError(f"the reference row {self.reference!r} must be added before the others (image {index})")
        shape, dtype, packed = self._reference_maps[index]
        return np.frombuffer(zlib.decompress(packed), dtype=dtype).reshape(shape)

    def _consider(self, row: RowSamples, index: int, label_map: np.ndarray, reference: np.ndarray,
                  differ: np.ndarray, pixels: int) -> None:
        wrong = int(differ.sum())
        slots = self.limit - self.fixed
        full = slots <= 0 or (len(row.worst) == slots and (wrong, -index) <= row.worst[0][:2])
        if index >= self.fixed and full:
            return  # not among the most wrong so far
        sample = self._sample(index, label_map, reference, differ, wrong, pixels)
        if index < self.fixed:
            row.fixed.append(sample)
            return
        heapq.heappush(row.worst, (wrong, -index, sample))
        if len(row.worst) > slots:
            self._release(heapq.heappop(row.worst)[2].index)

    def _sample(self, index: int, label_map: np.ndarray, reference: np.ndarray, differ: np.ndarray,
                wrong: int, pixels: int) -> Sample:
        shape = (int(label_map.shape[0]), int(label_map.shape[1]))
        size = long_side_size(shape, min(self.thumb_side, max(shape)))
        self._hold(index, size, reference)
        diff = np.where(differ, label_map, AGREE).astype(np.uint8)
        if size != shape:
            # A thumbnail pixel shows a disagreement when any pixel under it differs: thin borders must not vanish.
            marked = np.asarray(Image.fromarray(differ.astype(np.uint8) * 255).resize(size[::-1], Image.Resampling.BOX)) > 0
            diff = np.where(marked, _nearest(label_map, size), AGREE).astype(np.uint8)
        return Sample(index, self.pool[index][0].name, wrong, pixels, size,
                      self._png(_nearest(label_map, size)), self._png(diff, diff_palette=True))

    def _hold(self, index: int, size: tuple[int, int], reference: np.ndarray) -> None:
        """The pictures every row's sample of image `index` shows beside its own: input, ground truth, reference."""
        self._uses[index] += 1
        if index in self.inputs:
            return
        image_path, mask_path = self.pool[index]
        self.inputs[index] = _jpeg(load_image(image_path), size)
        if mask_path is not None:
            self.truths[index] = self._png(_nearest(read_mask(mask_path), size), truth=True)
        if self.reference is not None:
            self.references[index] = self._png(_nearest(reference, size))

    def _release(self, index: int) -> None:
        self._uses[index] -= 1
        if self._uses[index] <= 0:
            for pictures in (self.inputs, self.truths, self.references):
                pictures.pop(index, None)

    def _png(self, labels: np.ndarray, diff_palette: bool = False, truth: bool = False) -> bytes:
        colors = list(self.colors) + [(0, 0, 0)] * (256 - len(self.colors))
        if diff_palette:
            colors[AGREE] = AGREE_COLOR
        elif truth:
            colors[IGNORE_INDEX] = (224, 224, 192)  # VOC's colour for its ignored borders
        buffer = io.BytesIO()
        palette_image(labels.astype(np.uint8), colors).save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()

    # -- reading ---------------------------------------------------------------------------------
    def class_changes(self, label: str, limit: int = 10) -> list[tuple[int, float, float | None]]:
        """(class, IoU between the reference's and the row's maps, change of IoU against the labels), worst first.

        The change is the row's IoU against the ground truth minus the reference row's (report with
        labels); None otherwise. Classes absent from both maps are left out.
        """
        row = self.rows[label]
        between = row.between.iou()
        delta = None
        base = self.rows.get(self.reference) if self.reference is not None else None
        if row.vs_labels is not None and base is not None and base.vs_labels is not None:
            delta = row.vs_labels.iou() - base.vs_labels.iou()
        present = [c for c in range(len(between)) if not np.isnan(between[c])]
        present.sort(key=lambda c: (between[c], c))
        return [(c, float(between[c]), None if delta is None or np.isnan(delta[c]) else float(delta[c]))
                for c in present[:limit]]

    def class_name(self, index: int) -> str:
        return self.classes[index] if index < len(self.classes) else str(index)


@contextmanager
def image_pool(calib: Path | None, count: int, size: tuple[int, int]) -> Iterator[tuple[list[PoolItem], str]]:
    """Sample images when no labelled folder is given: `count` of the calibration images, else generated shapes.

    The generated images are the shapes dataset's val split (calibration uses its train split),
    made in a temporary folder that is removed afterwards; their masks are not used, since a
    model not trained on shapes has no reason to find them.
    """
    if calib is not None:
        from exporters.calibration import image_files, spread

        images = spread(image_files(calib, "calibration"), count)
        yield [(p, None) for p in images], f"{len(images)} of the calibration images in {calib} (int8 was calibrated on them)"
        return
    from runtimes.guards.fileio import work_folder
    from segedge.data import ShapesConfig, write_shapes_dataset

    with work_folder("segedge-samples-") as workdir:
        root = write_shapes_dataset(workdir, ShapesConfig(train=0, val=count, size=(max(32, size[0]), max(32, size[1]))))
        images = sorted((root / "JPEGImages").glob("*.jpg"))
        yield [(p, None) for p in images], f"{len(images)} generated shapes images (no --data or --calib given)"


def _nearest(labels: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """`labels` at `size` (H, W), nearest neighbour: no class is ever blended into another."""
    if labels.shape == tuple(size):
        return labels
    image = Image.fromarray(labels.astype(np.int32))
    return np.asarray(image.resize((int(size[1]), int(size[0])), Image.Resampling.NEAREST)).astype(labels.dtype)


def _jpeg(rgb: np.ndarray, size: tuple[int, int]) -> bytes:
    pixels = np.clip(rgb.astype(np.float32) * np.float32(pixel_scale(rgb.dtype)), 0, 255).round().astype(np.uint8)
    image = Image.fromarray(pixels).resize(size[::-1], Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
