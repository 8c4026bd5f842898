"""Property-based and fuzz tests: whatever comes in, only segedge's typed errors come out.

hypothesis feeds the model-card parser and the image loader random and mutated bytes, and drives
the Predictor with random sizes (1..4097), dtypes, channel layouts and tile settings on tiny
ONNX models built here (no torch): the output always has the input's size.
"""

from __future__ import annotations

import atexit
import io
import json
import shutil
import tempfile
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from runtimes.model.card import ModelCard
from runtimes.errors import CardError, ImageError, SegedgeError
from runtimes.imaging.image import load_image

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- mutations ----------------------------------------------------------------------------------
@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """`seed` with a few bytes flipped, inserted, deleted, or cut off: mostly-valid input."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice" and data:
            # Repeat a stretch elsewhere: chunk lengths and offsets stop agreeing with the data.
            length = draw(st.integers(1, 32))
            data[draw(st.integers(0, len(data))):0] = data[at : at + length]
    return bytes(data)


# -- the model card parser ----------------------------------------------------------------------
VALID_CARD = ModelCard(
    name="fuzz", architecture="deeplabv3plus", classes=("background", "cat", "dog"),
    palette=((0, 0, 0), (128, 0, 0), (0, 128, 0)), input_size=(512, 384), size_divisor=16,
    tile_size=512, tile_overlap=64, parity={"sizes": [{"size": [512, 384], "max_abs": 1e-5}]},
).to_json()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def parse_card(data: str | bytes) -> None:
    try:
        ModelCard.from_json(data)
    except CardError:
        pass


@FAST
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_card_parser_on_random_input(data):
    parse_card(data)


@FAST
@given(mutated(VALID_CARD.encode()))
def test_card_parser_on_mutated_cards(data):
    parse_card(data)


@FAST
@given(st.sampled_from(sorted(json.loads(VALID_CARD))), json_values)
@example("palette", [[1e400, 0, 0]])
@example("palette", [[10**400, 0, 0]])
@example("mean", [10**400, 0, 0])
@example("std", [1e-400, 1, 1])
@example("input_size", [10**30, 2])
@example("classes", {"a": 1})
@example("tile_size", True)
def test_card_parser_on_a_field_replaced(key, value):
    card = json.loads(VALID_CARD)
    card[key] = value
    parse_card(json.dumps(card))


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"name": ' * 50_000 + "1" + "}" * 50_000])
def test_card_parser_on_deep_nesting(text):
    parse_card(text)


# -- the image loader ---------------------------------------------------------------------------
def _encoded(fmt: str, mode: str = "RGB", size=(23, 17), **params) -> bytes:
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "P": 1}[mode]
    pixels = rng.integers(0, 255, (size[1], size[0], channels), np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, "L" if mode == "P" else mode)
    if mode == "P":
        image = image.convert("P")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _encoded_16bit() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(391, dtype=np.uint16).reshape(17, 23) * 100).save(buffer, "PNG")
    return buffer.getvalue()


SEED_IMAGES = {
    "png": _encoded("PNG"),
    "png-rgba": _encoded("PNG", "RGBA"),
    "png-16bit": _encoded_16bit(),
    "jpeg": _encoded("JPEG", quality=80),
    "jpeg-progressive": _encoded("JPEG", progressive=True),
    "gif": _encoded("GIF", "P"),
    "bmp": _encoded("BMP"),
    "tiff": _encoded("TIFF"),
    "tiff-lzw": _encoded("TIFF", compression="tiff_lzw"),
    "webp": _encoded("WEBP"),
    "ico": _encoded("ICO", size=(16, 16)),
    "ppm": _encoded("PPM"),
    "tga": _encoded("TGA"),
}

_SCRATCH = Path(tempfile.mkdtemp(prefix="segedge-fuzz-"))
atexit.register(shutil.rmtree, _SCRATCH, True)


def load_bytes(data: bytes, suffix: str) -> None:
    path = _SCRATCH / f"fuzz{suffix}"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "holds 2 frames", Pillow's own format warnings
        try:
            rgb = load_image(path, max_pixels=1 << 22)
        except ImageError:
            return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype in (np.uint8, np.uint16, np.float32)


@FAST
@given(st.binary(max_size=600))
def test_image_loader_on_random_bytes(data):
    load_bytes(data, ".png")


@FAST
@given(st.sampled_from(sorted(SEED_IMAGES)), st.data())
def test_image_loader_on_mutated_streams(fmt, data):
    """An open binary file (what an HTTP handler holds) goes through the same decoders."""
    stream = io.BytesIO(data.draw(mutated(SEED_IMAGES[fmt])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rgb = load_image(stream, max_pixels=1 << 22)
        except ImageError:
            return
    assert rgb.ndim == 3 and rgb.shape[2] == 3


@pytest.mark.parametrize("fmt", sorted(SEED_IMAGES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_image_loader_on_mutated_images(fmt, data):
    load_bytes(data.draw(mutated(SEED_IMAGES[fmt])), f".{fmt.split('-')[0]}")


# -- the Predictor --------------------------------------------------------------------------------
def _conv_model(kernel: int, pad: int, classes: int = 3) -> bytes:
    rng = np.random.default_rng(kernel)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (classes, 3, kernel, kernel)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["image", "w"], ["logits"], pads=[pad] * 4)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes, "h", "w"])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@cache
def fuzz_model(kind: str) -> Path:
    """"same": 3x3 conv, size divisor 8 (pads and crops); "valid": 5x5 conv, margin 2 (U-Net style)."""
    from exporters.card_io import embed_card

    valid = kind == "valid"
    proto = _conv_model(5 if valid else 3, 0 if valid else 1)
    card = ModelCard(name=f"fuzz_{kind}", classes=("a", "b", "c"), size_divisor=1 if valid else 8,
                     valid_margin=2 if valid else 0, input_size=(32, 32))
    path = _SCRATCH / f"{kind}.onnx"
    path.write_bytes(embed_card(proto, card).SerializeToString())
    return path


@cache
def predictor(kind: str, tile: int | None, overlap: int | None):
    from runtimes.predictor import Predictor

    overrides = {} if tile is None else {"tile_size": tile, **({} if overlap is None else {"tile_overlap": overlap})}
    return Predictor(fuzz_model(kind), threads=1, batch_size=3, **overrides)


# Mostly small sides; now and then one at the edges of 1..4097 (the other side then stays small).
sides = st.integers(1, 48) | st.sampled_from([1, 2, 3, 7, 8, 9, 63, 64, 65, 255, 257])
long_sides = st.sampled_from([1023, 2048, 4095, 4096, 4097])


@st.composite
def images(draw) -> np.ndarray:
    h, w = draw(sides), draw(sides)
    if draw(st.integers(0, 9)) == 0:
        if draw(st.booleans()):
            h = draw(long_sides)
        else:
            w = draw(long_sides)
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    shape = draw(st.sampled_from([(h, w), (h, w, 3), (h, w, 4)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


tiles = st.none() | st.tuples(st.sampled_from([8, 16, 24, 40, 64, 128]), st.none() | st.integers(0, 40))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(image=images(), kind=st.sampled_from(["same", "valid"]), tile=tiles, proba=st.booleans())
@example(image=np.zeros((4097, 3), np.uint8), kind="same", tile=(64, 16), proba=False)
@example(image=np.zeros((1, 1, 4), np.uint16), kind="valid", tile=None, proba=True)
@example(image=np.zeros((2, 4097, 3), np.float32), kind="valid", tile=(8, 0), proba=False)
def test_predictor_output_has_the_input_size(image, kind, tile, proba):
    size, overlap = (None, None) if tile is None else tile
    try:
        model = predictor(kind, size, overlap)
        result = model.predict_proba(image) if proba else model.predict(image)
    except SegedgeError:
        # A typed refusal is allowed (an overlap the tile cannot hold), but an image alone never fails.
        assert tile is not None
        return
    h, w = image.shape[:2]
    if proba:
        assert result.shape == (3, h, w) and result.dtype == np.float32
        assert np.all(np.isfinite(result)) and np.allclose(result.sum(axis=0), 1, atol=1e-4)
    else:
        assert result.shape == (h, w) and result.dtype == np.uint8 and result.max() < 3


@settings(max_examples=25, deadline=None)
@given(st.lists(images(), min_size=1, max_size=5), st.sampled_from(["same", "valid"]))
def test_predict_batch_matches_predict(batch, kind):
    model = predictor(kind, None, None)
    small = [image for image in batch if image.shape[0] * image.shape[1] <= 65536]
    for image, labels in zip(small, model.predict_batch(small)):
        assert labels.shape == image.shape[:2]
        assert np.array_equal(labels, model.predict(image))


# -- segedge's own protobuf reader for external-data references --------------------------------------
def _external_seed() -> bytes:
    proto = _conv_model(3, 1)
    tensor = proto.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "108")):
        tensor.external_data.add(key=key, value=value)
    return proto.SerializeToString()


EXTERNAL_SEED = _external_seed()


@settings(max_examples=300, deadline=None)
@given(mutated(EXTERNAL_SEED) | st.binary(max_size=300))
def test_external_data_reader_on_mutated_models(data):
    """It runs before onnx or onnxruntime see the file: it must never fail in another way."""
    from runtimes.errors import ModelFileError
    from runtimes.model.external_data import external_refs

    try:
        refs = external_refs(data)
    except ModelFileError:
        return
    assert all(isinstance(r.location, str) and isinstance(r.offset, int) for r in refs)


@settings(max_examples=8, deadline=None)
@given(mutated(_conv_model(3, 1).SerializeToString()))
def test_isolated_probe_on_mutated_models(data):
    """Whatever ONNX Runtime does with a mangled file happens in the child: here, only typed errors."""
    from runtimes.errors import ModelFileError
    from runtimes.guards.isolate import probe_model

    path = _SCRATCH / "mutated.onnx"
    path.write_bytes(data)
    try:
        probe_model(path, timeout_s=60, memory_mb=2048)
    except ModelFileError:
        pass
