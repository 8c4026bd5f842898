"""Hostile input at the command line: every verb, every bad argument, checkpoint and image.

Each case gets exactly one `segedge: error: ...` line on stderr, the documented exit code (2 for
a malformed command line, 1 for a file or runtime failure) and leaves no file behind: neither
the output, nor a temporary file beside it, nor a `segedge-export-*` folder in $TMPDIR.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segedge.cli import main
from tests.tiny_models import build

ROOT = Path(__file__).resolve().parents[1]
TINY = "tests/tiny_models.py:build"


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A clean folder for inputs and outputs, and a private $TMPDIR to check for leftovers."""
    monkeypatch.chdir(ROOT)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return tmp_path


def files_under(folder: Path) -> list[str]:
    # `import onnxruntime` (1.32) drops a `.ses` session file into $TMPDIR: not segedge's.
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != ".ses")


def run_cli(capsys, args: list[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("segedge: error: "), err
    assert "Traceback" not in err
    return lines[0]


def assert_refused(capsys, workdir: Path, args: list, code: int, message: str) -> str:
    """Run `args`; one error line holding `message`, exit `code`, no new file anywhere."""
    before = files_under(workdir)
    got, _, err = run_cli(capsys, args)
    line = one_error_line(err)
    assert got == code, line
    assert message.lower() in line.lower(), line
    assert files_under(workdir) == before
    return line


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile_cli") / "tiny.onnx"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert main(["export", TINY, "--input-size", "32x32", "-o", str(path), "--no-simplify", "--json"]) == 0
    finally:
        os.chdir(cwd)
    return path


# -- command-line arguments out of range or malformed -------------------------------------------
USAGE_CASES = [
    (["--bogus"], "No such option"),
    (["frobnicate"], "No such command"),
    (["export"], "Missing argument"),
    (["export", TINY, "--num-classes", "0"], "--num-classes"),
    (["export", TINY, "--num-classes", "-3"], "--num-classes"),
    (["export", TINY, "--num-classes", "many"], "--num-classes"),
    (["export", TINY, "--num-classes", "70000"], "--num-classes"),
    (["export", TINY, "--opset", "10"], "--opset"),
    (["export", TINY, "--opset", "1e9"], "--opset"),
    (["export", TINY, "--input-size", "-5x5"], "1 <= H, W"),
    (["export", TINY, "--input-size", "99999x5"], "1 <= H, W"),
    (["export", TINY, "--input-size", "5x5x5"], "HxW"),
    (["export", TINY, "--input-size", ""], "HxW"),
    (["export", TINY, "--input-size", "\x00"], "HxW"),
    (["export", TINY, "--std", "a,b,c"], "three numbers"),
    (["export", TINY, "--mean", "1,2,3,4"], "three comma-separated"),
    (["export", TINY, "--exporter", ""], "--exporter"),
    (["export", "tests/tiny_models.py:no_such_function"], "no_such_function"),
    (["export", "tests/no_such_file.py:build"], "no_such_file"),
    (["export", "tests/tiny_models.py:build_broken"], "always fails"),
    (["export", "tests/tiny_models.py:build_not_a_module"], "not a torch.nn.Module"),
    (["export", "../../etc/passwd:build"], "passwd"),
    (["export", ":"], ":"),
    (["info"], "Missing argument"),
    (["info", "m.onnx", "--json", "--extra"], "No such option"),
    (["verify", "m.onnx", "--batch", "0"], "--batch"),
    (["verify", "m.onnx", "--batch", "65"], "--batch"),
    (["verify", "m.onnx", "--atol", "-1"], "--atol"),
    (["verify", "m.onnx", "--rtol", "nan?"], "--rtol"),
    (["verify", "m.onnx", "--min-agreement", "1.5"], "--min-agreement"),
    (["verify", "m.onnx", "--preset", "fp64"], "--preset"),
    (["verify", "m.onnx", "--provider", "tpu"], "--provider"),
    (["verify", "m.onnx", "--seed", "x"], "--seed"),
    (["bench", "m.onnx", "--runs", "0"], "--runs"),
    (["bench", "m.onnx", "--warmup", "-1"], "--warmup"),
    (["bench", "m.onnx", "--threads", "0"], "--threads"),
    (["bench", "m.onnx", "--batch", "0"], "--batch"),
    (["bench", "m.onnx", "--batch", "100000"], "--batch"),
    (["models", "extra-argument"], "unexpected extra argument"),
    (["report", TINY, "--precisions", "fp64"], "--precisions"),
    (["report", TINY, "--providers", "gpu"], "--providers"),
    (["report", TINY, "--providers", ","], "--providers"),
    (["report", TINY, "--runtimes", "bogus"], "--runtimes"),
    (["report", TINY, "--calib-count", "0"], "--calib-count"),
    (["report", TINY, "--budget", "-1"], "--budget"),
    (["report", TINY, "--runs", "0"], "--runs"),
    (["report", TINY, "--input-size", "0x0"], "1 <= H, W"),
]


@pytest.mark.parametrize("args, message", USAGE_CASES, ids=[" ".join(a)[:60] for a, _ in USAGE_CASES])
def test_malformed_command_lines_exit_2(capsys, workdir, args, message):
    assert_refused(capsys, workdir, args, 2, message)


def test_out_of_range_size_for_a_real_model_exits_2(capsys, workdir, tiny_onnx):
    for args in (
        ["verify", tiny_onnx, "--sizes", "0x4"],
        ["verify", tiny_onnx, "--sizes", "32x32,abc"],
        ["verify", tiny_onnx, "--sizes", ""],
        ["bench", tiny_onnx, "--no-torch", "--input-size", "0x0"],
        ["bench", tiny_onnx, "--no-torch", "--input-size", "20000x20000"],
    ):
        assert_refused(capsys, workdir, args, 2, "HxW")


@pytest.mark.parametrize("verb", [["info"], ["verify"], ["bench", "--no-torch"]])
def test_a_folder_or_a_missing_model_exits_1(capsys, workdir, verb):
    folder = workdir / "a_folder.onnx"
    folder.mkdir()
    assert_refused(capsys, workdir, [verb[0], folder, *verb[1:]], 1, "not a file")
    assert_refused(capsys, workdir, [verb[0], workdir / "missing.onnx", *verb[1:]], 1, "not found")


# -- checkpoints: `segedge export tests/tiny_models.py:build --weights X` -----------------------
class Payload:
    """Unpickling this runs `touch marker`; segedge must never unpickle it."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _good_checkpoint(path: Path) -> None:
    torch.save(build().state_dict(), path)


def _truncated(path: Path) -> None:
    _good_checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _pickled_module(path: Path) -> None:
    torch.save(build(), path)


def _code_payload(path: Path) -> None:
    Payload.marker = str(path.parent / "PWNED")
    torch.save({"stem.0.weight": torch.zeros(1), "evil": Payload()}, path)


def _raw_pickle_payload(path: Path) -> None:
    # A legacy (non-zip) pickle file, as old torch.save wrote them.
    Payload.marker = str(path.parent / "PWNED")
    path.write_bytes(pickle.dumps(Payload()))


def _other_network(path: Path) -> None:
    torch.save({"encoder.0.weight": torch.zeros(8, 3, 3, 3), "decoder.bias": torch.zeros(2)}, path)


def _wrong_shapes(path: Path) -> None:
    torch.save(build(num_classes=21).state_dict(), path)


def _module_prefix(path: Path) -> None:
    torch.save({f"module.{k}": v for k, v in build().state_dict().items()}, path)


def _not_a_state_dict(path: Path) -> None:
    torch.save([torch.zeros(3)], path)


def _non_tensor_value(path: Path) -> None:
    state = dict(build().state_dict())
    state["stem.0.weight"] = "a string"
    torch.save(state, path)


CHECKPOINTS = {
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "truncated": (_truncated, "cannot be read"),
    "not zip": (lambda p: p.write_bytes(b"just some text, not a checkpoint\n" * 10), "cannot be read"),
    "png renamed": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200)), "cannot be read"),
    "zip of junk": (lambda p: p.write_bytes(b"PK\x03\x04" + os.urandom(300)), "cannot be read"),
    "pickled nn.Module": (_pickled_module, "pickled Python objects"),
    "__reduce__ payload": (_code_payload, "pickled Python objects"),
    "raw pickle payload": (_raw_pickle_payload, "checkpoint"),
    "another network": (_other_network, "missing keys"),
    "wrong shapes": (_wrong_shapes, "--num-classes"),
    "module. prefix": (_module_prefix, "'module.' prefix"),
    "a list": (_not_a_state_dict, "no state_dict"),
    "non-tensor value": (_non_tensor_value, "not a tensor"),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_hostile_checkpoint_is_one_line_exit_1_and_no_file(capsys, workdir, case):
    make, message = CHECKPOINTS[case]
    weights = workdir / "inputs" / "weights.pt"
    weights.parent.mkdir()
    make(weights)
    output = workdir / "out" / "model.onnx"
    line = assert_refused(capsys, workdir, ["export", TINY, "--weights", weights, "-o", output], 1, message)
    if "does not fit" not in line:  # a mismatch names the model instead
        assert str(weights) in line
    assert not (weights.parent / "PWNED").exists(), "the pickled payload ran"
    assert not output.exists()


def test_a_folder_as_weights(capsys, workdir):
    assert_refused(capsys, workdir, ["export", TINY, "--weights", workdir], 1, "not a file")


def test_a_good_checkpoint_still_exports(capsys, workdir):
    weights = workdir / "good.pt"
    _good_checkpoint(weights)
    output = workdir / "model.onnx"
    code, _, err = run_cli(capsys, ["export", TINY, "--weights", weights, "-o", output, "--input-size", "24x24",
                                    "--no-simplify", "--static", "--json"])
    assert code == 0, err
    assert output.is_file()
    assert [p.name for p in output.parent.iterdir() if p.name.startswith(".")] == []
    assert files_under(workdir / "tmp") == []


# -- images: the decoder is the attack surface `segedge predict` exposes ------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` in its header and holds almost no data."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _valid_png(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), np.uint8)).save(path)


def _truncated_png(path: Path) -> None:
    _valid_png(path)
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
            import io

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
    from runtimes.image import load_image

    make, message = IMAGES[case]
    path = tmp_path / "image.png"
    make(path)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text


def test_a_folder_is_not_an_image(tmp_path):
    from runtimes.errors import ImageError
    from runtimes.image import load_image

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
    from runtimes.image import load_image

    path = tmp_path / f"frames{suffix}"
    make(path)
    with pytest.warns(UserWarning, match="3 frames"):
        rgb = load_image(path)
    assert rgb.shape == (16, 24, 3)


# -- `segedge predict` over hostile images ------------------------------------------------------
def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("segedge: error: ")]


@pytest.mark.parametrize("case", list(IMAGES))
def test_predict_refuses_a_hostile_image_with_one_error_and_no_file(capsys, workdir, tiny_onnx, case):
    make, message = IMAGES[case]
    image = workdir / "inputs" / "image.png"
    image.parent.mkdir()
    make(image)
    before = files_under(workdir)
    code, _, err = run_cli(capsys, ["predict", tiny_onnx, image, "-o", workdir / "out"])
    assert code == 1, err
    assert len(error_lines(err)) == 1, err
    named = [line for line in err.splitlines() if str(image) in line]
    assert len(named) == 1 and __import__("re").search(message, named[0]), err
    assert files_under(workdir) == before


def test_predict_over_several_files_reports_each_bad_one_and_does_the_rest(capsys, workdir, tiny_onnx):
    folder = workdir / "photos"
    folder.mkdir()
    bad = []
    for i, case in enumerate(("empty", "text", "truncated png", "bomb header")):
        path = folder / f"bad{i}.png"
        IMAGES[case][0](path)
        bad.append(path)
    for name in ("good_a.png", "good_b.png"):
        _valid_png(folder / name)
    code, _, err = run_cli(capsys, ["predict", tiny_onnx, folder, "-o", workdir / "out"])
    assert code == 1, err
    assert len(error_lines(err)) == 1 and "4 of 6" in error_lines(err)[0], err
    for path in bad:
        assert len([line for line in err.splitlines() if str(path) in line]) == 1, err
    written = files_under(workdir / "out")
    assert written == ["good_a_mask.png", "good_b_mask.png"]
    for name in written:
        with Image.open(workdir / "out" / name) as mask:
            assert mask.size == (30, 40)
    assert files_under(workdir / "tmp") == []


def test_predict_takes_the_first_frame_of_an_animation(capsys, workdir, tiny_onnx):
    gif = workdir / "anim.gif"
    _animated_gif(gif)
    code, _, err = run_cli(capsys, ["predict", tiny_onnx, gif, "-o", workdir / "out"])
    assert code == 0, err
    with Image.open(workdir / "out" / "anim_mask.png") as mask:
        assert mask.size == (24, 16)


PREDICT_USAGE = [
    (["--tile", "0"], "--tile"),
    (["--tile", "big"], "--tile"),
    (["--overlap", "-1"], "--overlap"),
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "-0.1"], "--threshold"),
    (["--resize-long", "0"], "--resize-long"),
    (["--threads", "0"], "--threads"),
    (["--mean", "0.5,0.5"], "three comma-separated"),
    (["--std", "x,y,z"], "three numbers"),
    (["--provider", "npu"], "--provider"),
]


@pytest.mark.parametrize("extra, message", PREDICT_USAGE, ids=[" ".join(a) for a, _ in PREDICT_USAGE])
def test_predict_malformed_options_exit_2(capsys, workdir, tiny_onnx, extra, message):
    image = workdir / "photo.png"
    _valid_png(image)
    assert_refused(capsys, workdir, ["predict", tiny_onnx, image, "-o", workdir / "out", *extra], 2, message)


def test_predict_without_images_or_with_an_empty_folder(capsys, workdir, tiny_onnx):
    assert_refused(capsys, workdir, ["predict", tiny_onnx], 2, "Missing argument")
    empty = workdir / "empty"
    empty.mkdir()
    assert_refused(capsys, workdir, ["predict", tiny_onnx, empty, "-o", workdir / "out"], 2, "no images found")


def test_predict_with_a_hostile_model_exits_1(capsys, workdir):
    image = workdir / "photo.png"
    _valid_png(image)
    model = workdir / "model.onnx"
    model.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert_refused(capsys, workdir, ["predict", model, image, "-o", workdir / "out"], 1, "model.onnx")
    assert_refused(capsys, workdir, ["predict", workdir / "missing.onnx", image, "-o", workdir / "out"], 1, "not found")


def test_predict_refuses_images_pillow_only_warns_about(capsys, workdir, tiny_onnx):
    """100 MP: above Pillow's limit, below twice it, where Pillow itself only warns."""
    big = workdir / "big.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Image.new("1", (10000, 10000)).save(big)
    small = workdir / "small.png"
    _valid_png(small)
    code, _, err = run_cli(capsys, ["predict", tiny_onnx, big, small, "-o", workdir / "out"])
    assert code == 1 and len(error_lines(err)) == 1, err
    assert [line for line in err.splitlines() if str(big) in line and "decompression-bomb limit" in line], err
    assert files_under(workdir / "out") == ["small_mask.png"]
    # --max-pixels sets the limit either way: here below the small image's 1,200 pixels.
    code, _, err = run_cli(capsys, ["predict", tiny_onnx, small, "-o", workdir / "out2", "--max-pixels", "1000"])
    assert code == 1 and "decompression-bomb limit of 1000 pixels" in err
    assert not (workdir / "out2").exists()


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
def test_predictor_refuses_hostile_arrays_with_an_image_error(tiny_onnx, case):
    from runtimes.errors import ImageError
    from runtimes.predictor import Predictor

    predictor = Predictor(tiny_onnx, threads=1)
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
    ],
)
def test_predictor_refuses_bad_arguments_with_typed_errors(tiny_onnx, kwargs, error):
    import runtimes.errors
    from runtimes.predictor import Predictor

    with pytest.raises(getattr(runtimes.errors, error)):
        Predictor(tiny_onnx, **kwargs)


# -- hostile ONNX files through the verbs tests/test_hostile_models.py does not run ---------------
@pytest.mark.parametrize("case", __import__("tests.test_hostile_models", fromlist=["CASES"]).CASES)
def test_hostile_model_through_predict_and_verify(capsys, workdir, case):
    from tests.test_hostile_models import hostile_files

    (workdir / "models_case").mkdir()
    model_dir, cases = hostile_files(workdir / "models_case")
    make, message = cases[case]
    model = model_dir / "model.onnx"
    make(model)
    photo = workdir / "photo.png"
    _valid_png(photo)
    for args in (["predict", model, photo, "-o", workdir / "out"], ["verify", model, "--sizes", "8x8"],
                 ["info", model, "--isolate"]):
        line = assert_refused(capsys, workdir, args, 1, "")
        assert __import__("re").search(message, line), line


def test_predict_into_a_file_instead_of_a_folder(capsys, workdir, tiny_onnx):
    photo = workdir / "photo.png"
    _valid_png(photo)
    taken = workdir / "taken.txt"
    taken.write_bytes(b"keep me")
    assert_refused(capsys, workdir, ["predict", tiny_onnx, photo, "-o", taken], 1, "cannot write")
    assert taken.read_bytes() == b"keep me"


def test_running_out_of_memory_is_one_line(capsys, workdir, tiny_onnx, monkeypatch):
    import runtimes.predictor

    def exhausted(self, batch):
        raise MemoryError

    monkeypatch.setattr(runtimes.predictor.Predictor, "_run", exhausted)
    photo = workdir / "photo.png"
    _valid_png(photo)
    assert_refused(capsys, workdir, ["predict", tiny_onnx, photo, "-o", workdir / "out"], 1, "out of memory")
