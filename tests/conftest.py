"""Shared fixtures. Each block names its owner's tests; add yours in a block of its own."""

import contextlib
import io

import pytest

TINY = "tests/tiny_models.py:build"


# -- Everyone ----------------------------------------------------------------------------------
@pytest.fixture
def cli(capsys):
    """Run `segedge ARGS...` in this process: `code, stdout, stderr = cli("info", path)`."""
    from segedge.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """tests/tiny_models.py:build exported by `segedge export`, once per size: `tiny_export("48x40")`."""
    from segedge.cli import main

    exported = {}

    def export(size: str = "32x32"):
        if size not in exported:
            path = tmp_path_factory.mktemp(f"tiny_{size}") / "tiny.onnx"
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                # quiet: the test that first asks for it reads its own command's output
                assert main(["export", TINY, "--input-size", size, "-o", str(path)]) == 0
            exported[size] = path
        return exported[size]

    return export


# -- Predictor, tiling and `segedge predict` (tests/test_predictor.py, test_tiling.py, ...) ----
@pytest.fixture(scope="session")
def predictor_models(tmp_path_factory):
    """Tiny exported models with cards (see tests/predictor_models.py)."""
    from tests.predictor_models import build_predictor_models

    return build_predictor_models(tmp_path_factory.mktemp("predictor_models"))


# -- Hardening (tests/test_hostile_cli.py, test_hostile_images.py, test_interrupts.py) ------------
@pytest.fixture(scope="session")
def outlier_calib(tmp_path_factory):
    """Eight 32 x 32 images to calibrate and judge tests/outlier_torch.py's model on (a folder of JPEGs)."""
    from tests.outlier_torch import write_calibration

    return write_calibration(tmp_path_factory.mktemp("outlier-calib"))


@pytest.fixture
def hostile_dir(tmp_path, monkeypatch):
    """A clean folder for inputs and outputs, and a private $TMPDIR, both checked for leftovers."""
    from tests.hostile import ROOT

    monkeypatch.chdir(ROOT)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    return tmp_path


@pytest.fixture(scope="session")
def hostile_model(tmp_path_factory):
    """tests/tiny_models.py:build exported with its card (torchscript, not simplified: fast)."""
    from segedge.cli import main
    from tests.hostile import ROOT

    path = tmp_path_factory.mktemp("hostile_model") / "tiny.onnx"
    source = f"{ROOT / 'tests' / 'tiny_models.py'}:build"
    code = main(["export", source, "--input-size", "32x32", "-o", str(path), "--no-simplify", "--exporter", "torchscript", "--json"])
    assert code == 0
    return path


# -- Precision: quantize, eval, train (tests/test_quantize.py, test_eval.py, test_train.py) -------
@pytest.fixture(scope="session")
def demo_models(tmp_path_factory):
    """segedge.train.recipe.SMALL trained once per run, exported to fp32 and converted to fp16 and int8."""
    from tests.precision_models import build_demo_models

    return build_demo_models(tmp_path_factory)


# -- Docs: the commands README.md and docs/getting-started.md show (tests/test_readme.py, test_docs.py) --
@pytest.fixture(scope="session")
def command_1(demo_models, tmp_path_factory):
    """The `segedge report` of README command 1 on the stand-in (tests/doc_commands.py), once per run
    (pytest-xdist workers share it, as `demo_models`): {argv: the folder it wrote}."""
    from runtimes.guards.fileio import exclusive_lock
    from segedge.cli import main
    from tests.doc_commands import COMMAND_1, output_folder, stand_in, steps
    from tests.precision_models import shared_root

    step = next(s for s in steps(f"```bash\n{COMMAND_1}\n```\n") if s.kind == "segedge")
    folder = shared_root(tmp_path_factory) / "command_1"
    report = folder / output_folder(step.argv)
    with exclusive_lock(shared_root(tmp_path_factory) / "command_1.lock"):
        if not (report / "report.json").is_file():
            folder.mkdir(exist_ok=True)
            with stand_in(demo_models, folder), contextlib.redirect_stdout(io.StringIO()):
                assert main(list(step.argv)) == 0
    return {step.argv: report}


@pytest.fixture
def newcomer(demo_models, tmp_path):
    """A folder as a newcomer's after `cd segedge`: photos/, photo.jpg and theirs.onnx (a file exported
    elsewhere, no card), under the doc tests' stand-in (tests/doc_commands.py)."""
    import shutil

    import torch

    from tests.doc_commands import stand_in
    from tests.foreign_models import ColourNet, export

    images = sorted((demo_models.data / "JPEGImages").glob("*.jpg"))[:2]
    (tmp_path / "photos").mkdir()
    for image in images:
        shutil.copy(image, tmp_path / "photos" / image.name)
    shutil.copy(images[0], tmp_path / "photo.jpg")
    axes = {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}}
    export(ColourNet(), tmp_path / "theirs.onnx", torch.randn(1, 3, 64, 64), axes)
    with stand_in(demo_models, tmp_path):
        yield tmp_path
