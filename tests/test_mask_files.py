"""The files `segedge predict` writes: palette masks (zlib's run-length strategy) and overlays, lossless."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from runtimes.imaging.mask_files import PNG_COMPRESS_LEVEL, save_png
from runtimes.imaging.postprocess import overlay_image, palette_image

COLORS = [(0, 0, 0), (200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _label_map() -> np.ndarray:
    """960 x 1280 labels in blobs and stripes, as a segmentation model's masks are."""
    rng = np.random.default_rng(0)
    labels = np.zeros((960, 1280), np.uint8)
    for _ in range(40):
        top, left = rng.integers(0, 900), rng.integers(0, 1200)
        labels[top : top + rng.integers(20, 200), left : left + rng.integers(20, 300)] = rng.integers(1, 4)
    return labels


def test_a_palette_mask_is_written_exactly_and_smaller_than_zlibs_default_strategy(tmp_path):
    labels = _label_map()
    save_png(palette_image(labels, COLORS), tmp_path / "a_mask.png")
    with Image.open(tmp_path / "a_mask.png") as written:
        assert written.mode == "P"
        assert np.array_equal(np.asarray(written), labels)
        assert written.getpalette()[: 3 * len(COLORS)] == [c for rgb in COLORS for c in rgb]
    default = io.BytesIO()
    palette_image(labels, COLORS).save(default, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    assert (tmp_path / "a_mask.png").stat().st_size < 0.8 * len(default.getvalue())


def test_an_overlay_is_written_losslessly(tmp_path):
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    labels = _label_map()[:96, :128]
    overlay = overlay_image(photo, labels, COLORS)
    save_png(overlay, tmp_path / "a_overlay.png")
    with Image.open(tmp_path / "a_overlay.png") as written:
        assert written.mode == "RGB"
        assert np.array_equal(np.asarray(written), np.asarray(overlay))
