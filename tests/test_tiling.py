"""Tiled inference: the tile grid, the blending window, and tiled == whole-image results."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from runtimes import Predictor
from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.imaging.preprocess import from_model_output, model_side, model_window, to_model_input
from runtimes.imaging.tiling import plan_tiles, tile_weights, tiled_logits
from tests.predictor_models import scene

SAME = ModelCard(name="same", size_divisor=8)
UNET = ModelCard(name="unet", size_divisor=16, valid_margin=92, input_size=(572, 572))


@settings(max_examples=200, deadline=None)
@given(
    side=st.integers(1, 3000),
    tile=st.integers(64, 700),
    overlap=st.integers(0, 48),
    card=st.sampled_from([SAME, ModelCard(name="d1"), ModelCard(name="d32", size_divisor=32), UNET]),
)
def test_tiles_cover_the_image_on_the_stride_grid(side, tile, overlap, card):
    try:
        grid = plan_tiles((side, 5), card, tile, overlap)
    except UsageError:  # the tile leaves no room to advance: refused, never a wrong grid
        assert tile - 2 * card.valid_margin - overlap < 3 * card.size_divisor
        return
    tile_in, tile_out = grid.input_size[0], grid.output_size[0]
    assert tile_in == model_side(tile_in, card, 0)  # a size the model takes
    assert all(start % card.size_divisor == 0 for start in grid.rows)
    assert grid.rows[0] == 0 and grid.rows[-1] + tile_out >= side
    if len(grid.rows) > 1:
        assert tile_in <= tile
        for a, b in zip(grid.rows, grid.rows[1:]):
            assert 0 < b - a and a + tile_out - b >= overlap  # no gaps, at least the overlap asked for


def test_blending_window():
    np.testing.assert_array_equal(tile_weights(10, 0), np.ones(10))
    w = tile_weights(64, 16)
    np.testing.assert_allclose(w, w[::-1])
    assert w.min() > 0 and np.all(w[16:48] == 1) and np.all(np.diff(w[:16]) > 0)


def identity(batch):
    return batch.copy()  # a pointwise "model": tiles must reproduce the whole image exactly


@pytest.mark.parametrize("size, tile, overlap", [((300, 457), 64, 16), ((97, 1), 32, 8), ((1, 4097), 512, 64), ((64, 64), 64, 0)])
def test_pointwise_model_tiled_equals_whole(size, tile, overlap):
    image = scene(*size)
    grid = plan_tiles(size, SAME, tile, overlap)
    blocks = list(tiled_logits(image, SAME, grid, identity, batch_size=3))
    assert [(top, left) for top, left, _ in blocks] == sorted((top, left) for top, left, _ in blocks)  # row-major
    covered = np.zeros(size, np.int32)
    tiled = np.zeros((3, *size), np.float32)
    for top, left, block in blocks:
        assert block.shape[1] <= grid.output_size[0] and block.shape[2] <= grid.output_size[1]  # a tile at most
        covered[top : top + block.shape[1], left : left + block.shape[2]] += 1
        tiled[:, top : top + block.shape[1], left : left + block.shape[2]] = block
    assert (covered == 1).all()  # every pixel exactly once
    x, placement = to_model_input(image, SAME)
    whole = from_model_output(identity(x[None])[0], placement)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def tile_dependent(batch):
    """A "model" whose output depends on where its tile lies: each tile adds its own mean."""
    return batch + batch.mean(axis=(1, 2, 3), keepdims=True)


@pytest.mark.parametrize("size, tile, overlap", [((300, 457), 64, 16), ((150, 200), 64, 40), ((70, 333), 32, 20)])
def test_blending_matches_a_whole_image_accumulator(size, tile, overlap):
    """Streaming the blend (open columns, the carried overlap rows) gives what summing every
    weighted tile into whole-image buffers gives, also where three rows of tiles overlap."""
    image = scene(*size)
    grid = plan_tiles(size, SAME, tile, overlap)
    h, w = grid.output_size
    window = np.outer(tile_weights(h, overlap), tile_weights(w, overlap))
    sums, weights = np.zeros((3, size[0] + h, size[1] + w)), np.zeros((size[0] + h, size[1] + w))
    for top in grid.rows:
        for left in grid.cols:
            out = tile_dependent(model_window(image, top, left, grid.input_size, SAME)[None])[0]
            sums[:, top : top + h, left : left + w] += out * window
            weights[top : top + h, left : left + w] += window
    expected = sums[:, : size[0], : size[1]] / weights[: size[0], : size[1]]
    tiled = np.zeros((3, *size), np.float32)
    for top, left, block in tiled_logits(image, SAME, grid, tile_dependent, batch_size=2):
        tiled[:, top : top + block.shape[1], left : left + block.shape[2]] = block
    np.testing.assert_allclose(tiled, expected, rtol=1e-5, atol=1e-5)


def test_overlap_too_large_for_the_tile_is_refused():
    with pytest.raises(UsageError, match="no room"):
        plan_tiles((1000, 1000), SAME, 64, 60)
    with pytest.raises(UsageError, match="no room"):
        plan_tiles((1000, 1000), UNET, 200, 0)  # 188 -> 4 px output: less than the 16 px stride


def test_small_receptive_field_model_tiled_agrees_with_whole(predictor_models):
    image = scene(300, 457, seed=3)
    whole = Predictor(predictor_models.multiclass).predict(image)
    assert len(np.unique(whole)) >= 3
    for tile, overlap, batch in ((64, 32, 1), (96, 24, 4), (128, 32, 16)):
        tiled = Predictor(predictor_models.multiclass, tile_size=tile, tile_overlap=overlap, batch_size=batch)
        labels = tiled.predict(image)
        assert labels.shape == image.shape[:2]
        assert (labels == whole).mean() >= 0.999, (tile, overlap)


def test_tiling_is_used_only_for_images_larger_than_a_tile(predictor_models):
    image = scene(50, 60)
    np.testing.assert_array_equal(
        Predictor(predictor_models.multiclass, tile_size=64).predict_proba(image),
        Predictor(predictor_models.multiclass).predict_proba(image),
    )


def test_tiled_probabilities_and_odd_shapes(predictor_models):
    predictor = Predictor(predictor_models.multiclass, tile_size=64)
    for size in ((1, 4097), (513, 70), (3, 200)):
        probs = predictor.predict_proba(scene(*size))
        assert probs.shape == (4, *size)
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)


def test_tiled_with_resize_long(predictor_models):
    predictor = Predictor(predictor_models.multiclass, tile_size=64, resize_long=200)
    assert predictor.predict(scene(301, 150)).shape == (301, 150)


def test_one_channel_model_tiled(predictor_models):
    image = scene(200, 260)
    whole = Predictor(predictor_models.sigmoid).predict(image)
    tiled = Predictor(predictor_models.sigmoid, tile_size=64, tile_overlap=16).predict(image)
    assert (tiled == whole).mean() >= 0.999


def test_valid_unet_overlap_tile_equals_whole_image(predictor_models):
    if predictor_models.unet_valid is None:
        pytest.skip("segedge.models.unet is not there")
    image = scene(230, 301, seed=5)
    whole = Predictor(predictor_models.unet_valid)
    tiled = Predictor(predictor_models.unet_valid, tile_size=236)  # 236 = 188 + 3 * 16: 52 px per tile
    assert tiled.tile_overlap == 0  # the margin gives the context; no blending needed
    np.testing.assert_array_equal(tiled.predict(image), whole.predict(image))
    np.testing.assert_allclose(tiled.predict_proba(image), whole.predict_proba(image), atol=1e-5)


# -- probabilities of images too large to hold them ------------------------------------------------
def test_probabilities_over_the_budget_are_refused_pointing_to_predict(predictor_models, monkeypatch):
    import runtimes.predictor

    monkeypatch.setattr(runtimes.predictor, "PROBA_BUDGET_BYTES", 4 * 4 * 100 * 100 - 1)  # just under 4 x 100 x 100
    predictor = Predictor(predictor_models.multiclass, tile_size=64)
    with pytest.raises(UsageError, match="use predict for the label map, or pass out= a memory-mapped array"):
        predictor.predict_proba(scene(100, 100))
    assert predictor.predict_proba(scene(99, 100)).shape == (4, 99, 100)  # under it: held as before


def test_probabilities_stream_into_a_memory_mapped_npy(predictor_models, tmp_path):
    """`out=`: tiled blocks land in the file as they are blended; the result equals the in-memory one."""
    predictor = Predictor(predictor_models.multiclass, tile_size=64)
    image = scene(150, 230, seed=4)
    stream = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.float32, shape=(4, 150, 230))
    assert predictor.predict_proba(image, out=stream) is stream
    stream.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), predictor.predict_proba(image))
    with pytest.raises(UsageError, match="out must be a 4 x 150 x 230 float32 array"):
        predictor.predict_proba(image, out=np.zeros((4, 150, 231), np.float32))


def test_predict_proba_cli_streams_and_writes_the_same_files(predictor_models, cli, tmp_path):
    """`predict --proba` goes through the memory-mapped path; its .npy and mask agree with the library's."""
    from runtimes.imaging.postprocess import labels_from_probabilities

    source = tmp_path / "big.png"
    Image.fromarray(scene(150, 230, seed=4)).save(source)
    code, _, err = cli("predict", predictor_models.multiclass, source, "-o", tmp_path / "out", "--proba", "--tile", "64")
    assert code == 0, err
    probs = np.load(tmp_path / "out" / "big_proba.npy")
    predictor = Predictor(predictor_models.multiclass, tile_size=64)
    np.testing.assert_array_equal(probs, predictor.predict_proba(source))
    with Image.open(tmp_path / "out" / "big_mask.png") as mask:
        np.testing.assert_array_equal(np.asarray(mask), labels_from_probabilities(probs, "logits"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big_mask.png", "big_proba.npy"]
