"""runtimes.imaging.image: every image mode, depth and container an app may hand over, and broken files."""

import struct
import warnings

import numpy as np
import pytest
from PIL import Image

from runtimes import load_image
from runtimes.errors import ImageError

RGB = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [200, 100, 50], [255, 255, 255]]], np.uint8)


def saved(tmp_path, image: Image.Image, name: str, **params):
    path = tmp_path / name
    image.save(path, **params)
    return path


@pytest.fixture(autouse=True)
def warnings_are_errors():
    # Pillow's warnings (palette transparency, bombs) must not leak from load_image.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_rgb_png_is_read_exactly(tmp_path):
    out = load_image(saved(tmp_path, Image.fromarray(RGB), "x.png"))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out, RGB)


def test_grey_is_repeated_into_three_channels(tmp_path):
    grey = np.array([[0, 100, 255]], np.uint8)
    out = load_image(saved(tmp_path, Image.fromarray(grey), "g.png"))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


def test_one_bit_image_is_black_and_white(tmp_path):
    image = Image.fromarray(np.array([[0, 255, 0]], np.uint8)).convert("1")
    out = load_image(saved(tmp_path, image, "b.png"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 255, 0])


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_dropped_and_colours_kept(tmp_path, mode):
    rgba = np.concatenate([RGB, np.full((2, 3, 1), 7, np.uint8)], axis=2)
    image = Image.fromarray(rgba).convert(mode)
    expected = np.asarray(image.convert("RGB"))
    out = load_image(saved(tmp_path, image, "a.png"))
    np.testing.assert_array_equal(out, expected)


def test_palette_image_gives_its_colours(tmp_path):
    image = Image.fromarray(RGB).quantize(colors=8)
    out = load_image(saved(tmp_path, image, "p.png"))
    np.testing.assert_array_equal(out, np.asarray(image.convert("RGB")))


def test_palette_image_with_transparency_gives_its_colours_without_a_warning(tmp_path):
    image = Image.fromarray(np.array([[0, 1, 2]], np.uint8), mode="P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    path = saved(tmp_path, image, "t.png", transparency=1)
    with Image.open(path) as reread:
        assert reread.info.get("transparency") == 1
    out = load_image(path)  # warnings are errors here
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    gif = saved(tmp_path, image, "t.gif", transparency=1)
    np.testing.assert_array_equal(load_image(gif)[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])


def test_cmyk_is_converted_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))  # white
    cmyk.putpixel((1, 0), (255, 0, 0, 0))  # cyan
    for name in ("c.tif", "c.jpg"):
        out = load_image(saved(tmp_path, cmyk, name, **({"quality": 100} if name.endswith("jpg") else {})))
        np.testing.assert_allclose(out[0].astype(int), [[255, 255, 255], [0, 255, 255]], atol=3)


@pytest.mark.parametrize("name", ["g16.png", "g16.tif"])
def test_16_bit_grey_keeps_all_its_bits(tmp_path, name):
    values = np.array([[0, 1, 255, 256, 32768, 65535]], np.uint16)
    path = saved(tmp_path, Image.fromarray(values), name)
    with Image.open(path) as reread:
        assert reread.mode.startswith("I;16")
    out = load_image(path)
    assert out.dtype == np.uint16 and out.shape == (1, 6, 3)
    np.testing.assert_array_equal(out[:, :, 1], values)  # nothing clipped at 255


def test_16_bit_rgb_tiff_is_scaled_not_clipped(tmp_path):
    rgb16 = np.array([[[65535, 32768, 257], [0, 1000, 60000]]], np.uint16)
    path = tmp_path / "rgb48.tif"
    path.write_bytes(_rgb48_tiff(rgb16))
    out = load_image(path)
    # Pillow decodes 48-bit RGB to 8 bits by scaling (the high byte), never by clipping at 255.
    np.testing.assert_allclose(out.astype(float), rgb16 / 257.0, atol=1.0)


def test_32_bit_integer_image_is_read_as_16_bit():
    image = Image.fromarray(np.array([[0, 40000, 70000]], np.int32), mode="I")
    out = load_image(image)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[0, :, 0], [0, 40000, 65535])


def test_float_image_is_kept_in_0_to_1():
    out = load_image(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, :, 2], [0.0, 0.5, 1.0])


def test_exif_orientation_is_applied(tmp_path):
    wide = np.zeros((2, 4, 3), np.uint8)
    wide[0, 0] = (255, 0, 0)  # top-left marker
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    path = saved(tmp_path, Image.fromarray(wide), "o.png", exif=exif)
    out = load_image(path)
    assert out.shape == (4, 2, 3)
    np.testing.assert_array_equal(out[0, 1], [255, 0, 0])  # the marker is now at the top-right
    assert out.sum() == 255


def test_a_callers_turned_image_is_read_upright_and_left_as_it_was(tmp_path):
    wide = np.zeros((2, 4, 3), np.uint8)
    wide[0, 0] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    with Image.open(saved(tmp_path, Image.fromarray(wide), "o.png", exif=exif)) as image:
        out = load_image(image)
        assert out.shape == (4, 2, 3) and out[0, 1].tolist() == [255, 0, 0]
        # A file segedge opens is turned in place; the caller's image keeps its size and its tag.
        assert image.size == (4, 2) and image.getexif()[0x0112] == 6
        np.testing.assert_array_equal(np.asarray(image), wide)


def test_multi_frame_file_gives_its_first_frame_with_a_warning(tmp_path):
    frames = [Image.fromarray(np.full((3, 4, 3), v, np.uint8)) for v in (10, 200)]
    path = tmp_path / "anim.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="2 frames; using the first"):
        out = load_image(path)
    np.testing.assert_array_equal(out, np.full((3, 4, 3), 10, np.uint8))


def test_decompression_bomb_limit_is_kept_and_can_be_raised(tmp_path, monkeypatch):
    path = saved(tmp_path, Image.new("RGB", (30, 30)), "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses above twice this
    with pytest.raises(ImageError, match=r"big\.png.*decompression-bomb limit.*max_pixels"):
        load_image(path)
    assert load_image(path, max_pixels=900).shape == (30, 30, 3)
    assert Image.MAX_IMAGE_PIXELS == 100  # the process-wide limit is restored
    with pytest.raises(ImageError, match="decompression-bomb"):
        load_image(saved(tmp_path, Image.new("RGB", (5, 5)), "small.png"), max_pixels=10)


@pytest.mark.parametrize(
    "content, why",
    [
        (b"this is not an image", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not"),
        (b"", "not an image"),
    ],
)
def test_broken_files_raise_one_typed_error_naming_the_file(tmp_path, content, why):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=rf"broken\.png.*{why}"):
        load_image(path)


def test_truncated_file_raises_image_error(tmp_path):
    whole = saved(tmp_path, Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "w.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(ImageError, match="cut.png"):
        load_image(cut)


def test_missing_file_and_folder_raise_image_error(tmp_path):
    with pytest.raises(ImageError, match="not found: .*nope.png"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


# -- numpy arrays ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "array, expected",
    [
        (RGB, RGB),
        (RGB[:, :, 0], np.repeat(RGB[:, :, :1], 3, axis=2)),
        (RGB[:, :, :1], np.repeat(RGB[:, :, :1], 3, axis=2)),
        (np.concatenate([RGB, RGB[:, :, :1]], axis=2), RGB),
        (np.stack([RGB[:, :, 0], RGB[:, :, 1]], axis=2), np.repeat(RGB[:, :, :1], 3, axis=2)),
        (RGB.astype(np.uint16) * 257, RGB.astype(np.uint16) * 257),
        (RGB / 255.0, (RGB / 255.0).astype(np.float32)),
        (RGB[:, :, 0] > 100, np.repeat((RGB[:, :, :1] > 100).astype(np.uint8) * 255, 3, axis=2)),
    ],
    ids=["rgb", "hw", "hw1", "rgba", "la", "uint16", "float", "bool"],
)
def test_arrays_of_every_layout_and_depth(array, expected):
    out = load_image(array)
    assert out.shape == expected.shape[:2] + (3,) and out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


def test_loading_is_idempotent():
    for array in (RGB, RGB.astype(np.uint16) * 257, (RGB / 255.0).astype(np.float32)):
        once = load_image(array)
        assert load_image(once) is once


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((2, 2, 5), np.uint8), "shape"),
        (np.zeros((2, 2, 3, 1), np.uint8), "shape"),
        (np.zeros((0, 2, 3), np.uint8), "no pixels"),
        (np.zeros((2, 2, 3), np.int64), "uint8, uint16 or float"),
    ],
)
def test_unusable_arrays_raise_image_error(array, match):
    with pytest.raises(ImageError, match=match):
        load_image(array)


def test_other_objects_raise_image_error():
    with pytest.raises(ImageError, match="list"):
        load_image([[1, 2], [3, 4]])


def _rgb48_tiff(rgb: np.ndarray) -> bytes:
    """A minimal uncompressed little-endian TIFF with 16 bits per RGB sample (Pillow cannot write one)."""
    h, w, _ = rgb.shape
    data = rgb.astype("<u2").tobytes()
    bits_at, data_at = 8, 14
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value or offset
        (256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, bits_at), (259, 3, 1, 1), (262, 3, 1, 2),
        (273, 4, 1, data_at), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1),
    ]
    out = b"II*\x00" + struct.pack("<I", data_at + len(data)) + struct.pack("<3H", 16, 16, 16) + data
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 and count == 1 else struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0)


def test_open_binary_files_are_read(tmp_path):
    import io

    buffer = io.BytesIO()
    Image.fromarray(RGB).save(buffer, format="PNG")
    np.testing.assert_array_equal(load_image(io.BytesIO(buffer.getvalue())), RGB)
    with pytest.raises(ImageError, match="<stream>: not an image"):
        load_image(io.BytesIO(b"garbage"))
    path = tmp_path / "x.png"
    path.write_bytes(buffer.getvalue())
    with open(path, "rb") as handle:
        np.testing.assert_array_equal(load_image(handle), RGB)
