"""Hostile images: corrupt, empty, not images, decompression bombs, animations; and hostile arrays.

Through `load_image`, through `Predictor` (the library's entry point) and through `segedge
predict`, where each bad file gets its own line, the rest are segmented, and the exit is 1.
"""

from __future__ import annotations

import io
import re
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hostile import (
    assert_refused,
    error_lines,
    files_under,
    valid_png,
)


# -- images: the decoder is the attack surface `segedge predict` exposes ------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` in its header and holds almost no data."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _truncated_png(path: Path) -> None:
    valid_png(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_jpeg(path: Path) -> None:
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path, format="JPEG")
    data = bytearray(path.read_bytes())
    data[20 : len(data) - 20] = bytes(len(data) - 40)  # header kept, everything after it zeroed
    path.write_bytes(bytes(data))


def _bomb_header(path: Path) -> None:
    path.write_bytes(png_header_only(100_000, 100_000))


def _bomb_real(path: Path) -> None:
    # 400 MP of black compresses to a few hundred kilobytes; made once per session (see below).
    path.write_bytes(_real_bomb_bytes())


_BOMB_CACHE: dict[str, bytes] = {}


def _real_bomb_bytes() -> bytes:
    if "bomb" not in _BOMB_CACHE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.new("1", (20000, 20000))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
        _BOMB_CACHE["bomb"] = buffer.getvalue()
    return _BOMB_CACHE["bomb"]


NOT_AN_IMAGE = "not a readable image|not an image"
IMAGES = {
    "empty": (lambda p: p.write_bytes(b""), NOT_AN_IMAGE),
    "text": (lambda p: p.write_text("hello, I am not an image\n"), NOT_AN_IMAGE),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(1).bytes(2048)), NOT_AN_IMAGE),
    "truncated png": (_truncated_png, NOT_AN_IMAGE),
    "corrupt jpeg": (_corrupt_jpeg, NOT_AN_IMAGE),
    "bomb header": (_bomb_header, "decompression-bomb"),
    "bomb 20000x20000": (_bomb_real, "decompression-bomb"),
    "onnx renamed": (lambda p: p.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(100)), NOT_AN_IMAGE),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_hostile_image_is_one_typed_error(tmp_path, case):
    from runtimes.errors import ImageError
    from runtimes.imaging.image import load_image

    make, message = IMAGES[case]
    path = tmp_path / "image.png"
    make(path)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text


def test_a_folder_is_not_an_image(tmp_path):
    from runtimes.errors import ImageError
    from runtimes.imaging.image import load_image

    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def _animated_gif(path: Path) -> None:
    frames = [Image.new("RGB", (24, 16), (0, 80 * i, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)


def _multipage_tiff(path: Path) -> None:
    pages = [Image.new("RGB", (24, 16), (i * 60, 0, 0)) for i in range(3)]
    pages[0].save(path, save_all=True, append_images=pages[1:])


@pytest.mark.parametrize("make, suffix", [(_animated_gif, ".gif"), (_multipage_tiff, ".tif")])
def test_multi_frame_images_give_their_first_frame_with_a_warning(tmp_path, make, suffix):
    from runtimes.imaging.image import load_image

    path = tmp_path / f"frames{suffix}"
    make(path)
    with pytest.warns(UserWarning, match="3 frames"):
        rgb = load_image(path)
    assert rgb.shape == (16, 24, 3)


# -- `segedge predict` over hostile images ------------------------------------------------------
@pytest.mark.parametrize("case", list(IMAGES))
def test_predict_refuses_a_hostile_image_with_one_error_and_no_file(cli, hostile_dir, hostile_model, case):
    make, message = IMAGES[case]
    image = hostile_dir / "inputs" / "image.png"
    image.parent.mkdir()
    make(image)
    before = files_under(hostile_dir)
    code, _, err = cli("predict", hostile_model, image, "-o", hostile_dir / "out")
    assert code == 1, err
    assert len(error_lines(err)) == 1, err
    named = [line for line in err.splitlines() if str(image) in line]
    assert len(named) == 1 and re.search(message, named[0]), err
    assert files_under(hostile_dir) == before


def test_predict_over_several_files_reports_each_bad_one_and_does_the_rest(cli, hostile_dir, hostile_model):
    folder = hostile_dir / "photos"
    folder.mkdir()
    bad = []
    for i, case in enumerate(("empty", "text", "truncated png", "bomb header")):
        path = folder / f"bad{i}.png"
        IMAGES[case][0](path)
        bad.append(path)
    for name in ("good_a.png", "good_b.png"):
        valid_png(folder / name)
    code, _, err = cli("predict", hostile_model, folder, "-o", hostile_dir / "out")
    assert code == 1, err
    assert len(error_lines(err)) == 1 and "4 of 6" in error_lines(err)[0], err
    for path in bad:
        assert len([line for line in err.splitlines() if str(path) in line]) == 1, err
    written = files_under(hostile_dir / "out")
    assert written == ["good_a_mask.png", "good_b_mask.png"]
    for name in written:
        with Image.open(hostile_dir / "out" / name) as mask:
            assert mask.size == (30, 40)
    assert files_under(hostile_dir / "tmp") == []


def test_predict_takes_the_first_frame_of_an_animation(cli, hostile_dir, hostile_model):
    gif = hostile_dir / "anim.gif"
    _animated_gif(gif)
    code, _, err = cli("predict", hostile_model, gif, "-o", hostile_dir / "out")
    assert code == 0, err
    with Image.open(hostile_dir / "out" / "anim_mask.png") as mask:
        assert mask.size == (24, 16)


PREDICT_USAGE = [
    (["--tile", "0"], "--tile"),
    (["--tile", "big"], "--tile"),
    (["--overlap", "-1"], "--overlap"),
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "-0.1"], "--threshold"),
    (["--resize-long", "0"], "--resize-long"),
    (["--threads", "0"], "--threads"),
    (["--threads", "100000"], "--threads"),
    (["--mean", "0.5,0.5"], "three comma-separated"),
    (["--std", "x,y,z"], "three numbers"),
    (["--provider", "npu"], "--provider"),
]


@pytest.mark.parametrize("extra, message", PREDICT_USAGE, ids=[" ".join(a) for a, _ in PREDICT_USAGE])
def test_predict_malformed_options_exit_2(cli, hostile_dir, hostile_model, extra, message):
    image = hostile_dir / "photo.png"
    valid_png(image)
    assert_refused(cli, hostile_dir, ["predict", hostile_model, image, "-o", hostile_dir / "out", *extra], 2, message)


def test_predict_without_images_or_with_an_empty_folder(cli, hostile_dir, hostile_model):
    assert_refused(cli, hostile_dir, ["predict", hostile_model], 2, "Missing argument")
    empty = hostile_dir / "empty"
    empty.mkdir()
    assert_refused(cli, hostile_dir, ["predict", hostile_model, empty, "-o", hostile_dir / "out"], 2, "no images found")


def test_predict_with_a_hostile_model_exits_1(cli, hostile_dir):
    image = hostile_dir / "photo.png"
    valid_png(image)
    model = hostile_dir / "model.onnx"
    model.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert_refused(cli, hostile_dir, ["predict", model, image, "-o", hostile_dir / "out"], 1, "model.onnx")
    assert_refused(cli, hostile_dir, ["predict", hostile_dir / "missing.onnx", image, "-o", hostile_dir / "out"], 1, "not found")


def test_predict_refuses_images_pillow_only_warns_about(cli, hostile_dir, hostile_model):
    """100 MP: above Pillow's limit, below twice it, where Pillow itself only warns."""
    big = hostile_dir / "big.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Image.new("1", (10000, 10000)).save(big)
    small = hostile_dir / "small.png"
    valid_png(small)
    code, _, err = cli("predict", hostile_model, big, small, "-o", hostile_dir / "out")
    assert code == 1 and len(error_lines(err)) == 1, err
    assert [line for line in err.splitlines() if str(big) in line and "decompression-bomb limit" in line], err
    assert files_under(hostile_dir / "out") == ["small_mask.png"]
    # --max-pixels sets the limit either way: here below the small image's 1,200 pixels.
    code, _, err = cli("predict", hostile_model, small, "-o", hostile_dir / "out2", "--max-pixels", "1000")
    assert code == 1 and "decompression-bomb limit of 1000 pixels" in err
    assert not (hostile_dir / "out2").exists()



# -- the library's entry point: `Predictor` with hostile arrays and arguments ---------------------
HOSTILE_ARRAYS = {
    "int32": np.zeros((5, 5, 3), np.int32),
    "int64 beyond 16 bits": np.full((4, 4), 2**40, np.int64),
    "complex": np.zeros((5, 5), np.complex64),
    "object": np.array([[None]]),
    "no rows": np.zeros((0, 5), np.uint8),
    "no columns": np.zeros((5, 0, 3), np.uint8),
    "5 channels": np.zeros((5, 5, 5), np.uint8),
    "1-D": np.zeros(5, np.uint8),
    "4-D batch": np.zeros((1, 5, 5, 3), np.uint8),
    "NaN": np.full((6, 6, 3), np.nan, np.float32),
    "inf": np.full((6, 6), np.inf, np.float64),
    "a list": [[1, 2], [3, 4]],
    "bytes": b"\x89PNG\r\n\x1a\n",
    "None": None,
}


@pytest.mark.parametrize("case", list(HOSTILE_ARRAYS))
def test_predictor_refuses_hostile_arrays_with_an_image_error(hostile_model, case):
    from runtimes.errors import ImageError
    from runtimes.predictor import Predictor

    predictor = Predictor(hostile_model, threads=1)
    with pytest.raises(ImageError):
        predictor.predict(HOSTILE_ARRAYS[case])


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"batch_size": 0}, "UsageError"),
        ({"threshold": 2.0}, "UsageError"),
        ({"resize_long": 0}, "UsageError"),
        ({"tile_sise": 64}, "CardError"),
        ({"tile_size": 0}, "CardError"),
        ({"tile_overlap": -1}, "CardError"),
        ({"mean": (0.5, 0.5)}, "CardError"),
        ({"std": (0.0, 1.0, 1.0)}, "CardError"),
        ({"size_divisor": 0}, "CardError"),
        ({"providers": "gpu"}, "ProviderError"),
        ({"threads": 100_000}, "UsageError"),  # ONNX Runtime would start them all
        ({"threads": -1}, "UsageError"),
    ],
)
def test_predictor_refuses_bad_arguments_with_typed_errors(hostile_model, kwargs, error):
    import runtimes.errors
    from runtimes.predictor import Predictor

    with pytest.raises(getattr(runtimes.errors, error)):
        Predictor(hostile_model, **kwargs)


def test_a_call_raising_the_limit_does_not_lift_it_for_other_threads(tmp_path):
    """While one call reads with its own max_pixels (Pillow's global limit swapped off), a call
    without one, in another thread at that moment, is still refused a bomb."""
    from runtimes.imaging import image as image_module
    from runtimes.errors import ImageError
    from runtimes.imaging.image import load_image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_real_bomb_bytes())
    # Another thread is reading a huge file with its own limit right now.
    with image_module._pixel_limit(10**10), pytest.raises(ImageError, match="decompression-bomb"):
        load_image(bomb)


# -- label masks of a `segedge report --data` folder ---------------------------------------------
MASKS = {
    "colour": (lambda p: Image.new("RGB", (40, 30)).save(p), "one channel"),
    "text": (lambda p: p.write_text("not a mask"), "not a readable mask"),
    "truncated": (lambda p: p.write_bytes(png_header_only(40, 30)[:40]), "not a readable mask"),
    "bomb": (lambda p: p.write_bytes(_real_bomb_bytes()), "decompression-bomb"),
    "missing": (lambda p: None, "mask not found"),
}


@pytest.mark.parametrize("case", list(MASKS))
def test_hostile_masks_are_image_errors(tmp_path, case):
    from runtimes.errors import ImageError
    from segedge.data.labelled import read_mask

    make, message = MASKS[case]
    path = tmp_path / "mask.png"
    make(path)
    with pytest.raises(ImageError, match=message):
        read_mask(path)


def test_palette_and_grey_masks_read_as_class_indices(tmp_path):
    from segedge.data.labelled import read_mask

    labels = np.arange(12, dtype=np.uint8).reshape(3, 4) % 3
    for mode in ("L", "P"):
        Image.fromarray(labels).convert(mode).save(tmp_path / f"{mode}.png")
        assert np.array_equal(read_mask(tmp_path / f"{mode}.png"), labels)


# -- hostile model cards: sizes that would make the predictor allocate without end ---------------
def conv_model_with_card(field: str, value) -> bytes:
    """A valid one-conv model whose card (written by hand: ModelCard refuses it) states `value`."""
    import json

    from onnx import TensorProto, helper, numpy_helper

    from runtimes.model.card import CARD_KEY, ModelCard

    w = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["logits"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    card = {**ModelCard(name="hostile", classes=("a", "b", "c")).to_dict(), field: value}
    proto.metadata_props.add(key=CARD_KEY, value=json.dumps(card))
    return proto.SerializeToString()


@pytest.mark.parametrize(
    "field, value",
    [("input_size", [10**9, 10**9]), ("size_divisor", 10**9), ("valid_margin", 10**6), ("tile_size", 10**7)],
)
def test_a_card_with_absurd_sizes_is_refused(cli, hostile_dir, field, value):
    """A size divisor of 10^9 made `segedge predict` pad a 40 x 30 photo until the kernel killed it."""
    path = hostile_dir / "model.onnx"
    path.write_bytes(conv_model_with_card(field, value))
    photo = hostile_dir / "photo.png"
    valid_png(photo)
    for args in (["predict", path, photo, "-o", hostile_dir / "out"], ["bench", path, "--no-torch", "--runs", "1"],
                 ["info", path]):
        assert_refused(cli, hostile_dir, args, 1, f"'{field}' must be")
