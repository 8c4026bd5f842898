"""`--engine ray` on a real local Ray instance: predict's files byte for byte a local run's, failures,
resume, errors as one line, Ctrl-C, and eval's confusion matrices equal to a local eval's.

The in-process tests share one Ray instance (the CLI joins a Ray its process already runs, and
leaves it running); the interrupt test runs `python -m segedge` with a Ray of its own.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from runtimes import Predictor
from runtimes.measure.metrics import ConfusionMatrix
from segedge.batch.ray_eval import confusion_on_ray
from segedge.data.labelled import labelled_pairs, read_pair
from tests.predictor_models import scene

ROOT = Path(__file__).resolve().parents[1]
QUIET_RAY = {"RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance of 2 CPUs for this module (address "local": never a `ray start` cluster)."""
    os.environ.update(QUIET_RAY)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, configure_logging=True)
    yield
    ray.shutdown()


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(scene(40, 56, 1)).save(folder / "a.png")
    Image.fromarray(scene(33, 21, 2)).save(folder / "sub" / "b.jpg", quality=95)
    Image.fromarray(scene(17, 90, 3)).save(folder / "sub" / "deeper" / "c.tif")
    (folder / "broken.png").write_bytes(b"garbage")
    (folder / "notes.txt").write_text("not an image extension: ignored")
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.NoSuchProcess:
        return ""


def lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.strip()]


def test_outputs_are_a_local_runs_bytes_failures_listed_and_a_rerun_resumes(cli, tmp_path, images, predictor_models,
                                                                           ray_instance):
    args = ["predict", predictor_models.multiclass, images, "-r", "--overlay", "--proba"]
    code, _, local_err = cli(*args, "-o", tmp_path / "local")
    assert code == 1
    out = tmp_path / "ray"
    code, stdout, err = cli(*args, "-o", out, "--engine", "ray", "--workers", "2")
    assert code == 1 and stdout == ""
    broken = f"{images / 'broken.png'}: not an image (no decoder recognises its content)"
    assert lines(err) == [f"skipped: {broken}",
                          f"3 of 4 images segmented into {out} (2 Ray workers on 1 node)",
                          f"segedge: error: 1 of 4 images could not be read (listed in {out / 'failures.jsonl'})"]
    assert lines(local_err)[0] == f"skipped: {broken}"  # the same loader, the same words
    written = files(out)
    assert json.loads(written.pop("failures.jsonl")) == {"path": str(images / "broken.png"), "reason": broken}
    assert written == files(tmp_path / "local")  # names, folders, palette PNGs, overlays, .npy: the same bytes
    assert sorted(written) == ["a_mask.png", "a_overlay.png", "a_proba.npy", "sub/b_mask.png", "sub/b_overlay.png",
                               "sub/b_proba.npy", "sub/deeper/c_mask.png", "sub/deeper/c_overlay.png",
                               "sub/deeper/c_proba.npy"]

    # Resume: outputs whole stay as they are; a cut-short or missing one has its image redone; the
    # image that failed is tried again (now readable), and the failure list goes with its failure.
    untouched = {p: (out / p).stat().st_mtime_ns for p in ("a_mask.png", "a_overlay.png", "a_proba.npy")}
    overlay = out / "sub" / "b_overlay.png"
    overlay.write_bytes(overlay.read_bytes()[:-5])
    (out / "sub" / "deeper" / "c_proba.npy").unlink()
    Image.fromarray(scene(20, 20, 4)).save(images / "broken.png")
    code, _, err = cli(*args, "-o", out, "--engine", "ray")
    assert code == 0, err
    assert lines(err) == [f"4 of 4 images segmented into {out} (1 of them already there; 2 Ray workers on 1 node)"]
    assert {p: (out / p).stat().st_mtime_ns for p in untouched} == untouched
    code, _, _ = cli(*args, "-o", tmp_path / "local")
    assert code == 0
    assert files(out) == files(tmp_path / "local")  # redone the same, and no failures.jsonl left


def test_card_options_and_tiling_reach_the_actors(cli, tmp_path, images, predictor_models, ray_instance):
    args = ["predict", predictor_models.no_card, images / "a.png", "--tile", "32", "--overlap", "8",
            "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--proba"]
    assert cli(*args, "-o", tmp_path / "local")[0] == 0
    code, _, err = cli(*args, "-o", tmp_path / "ray", "--engine", "ray", "--workers", "1", "--threads-per-worker", "2")
    assert code == 0, err
    assert "(1 Ray worker on 1 node)" in err
    assert files(tmp_path / "ray") == files(tmp_path / "local")


def test_a_worker_error_no_image_explains_is_one_line(cli, tmp_path, images, predictor_models, ray_instance):
    blocker = tmp_path / "a_file"
    blocker.write_text("the output folder's place is taken by a file")
    code, _, err = cli("predict", predictor_models.multiclass, images / "a.png", "-o", blocker, "--engine", "ray")
    assert code == 1
    assert len(lines(err)) == 1 and lines(err)[0].startswith(f"segedge: error: cannot write to {blocker}"), err


@pytest.mark.parametrize("args, message", [
    (["--workers", "2"], "--workers go with --engine ray"),
    (["--engine", "ray", "--threads", "2"], "--threads is for --engine local"),
    (["--engine", "ray", "--workers", "3"], "3 workers x 1 thread need 3 CPUs; the Ray cluster has 2"),
    (["--engine", "ray", "--address", "localhost"], "must be HOST:PORT"),
    (["--engine", "spark"], "spark"),
])
def test_bad_engine_options_are_usage_errors(cli, tmp_path, images, predictor_models, ray_instance, args, message):
    code, _, err = cli("predict", predictor_models.multiclass, images / "a.png", "-o", tmp_path / "out", *args)
    assert code == 2 and len(lines(err)) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_eval_sums_block_matrices_to_a_local_evals(cli, tmp_path, predictor_models, ray_instance):
    data = tmp_path / "labelled"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    other = Predictor(predictor_models.bgr)  # another model's labels: a matrix with errors in it
    for i in range(9):
        rgb = scene(24 + 3 * i, 40 - i, i)
        Image.fromarray(rgb).save(data / "images" / f"{i}.png")
        mask = other.predict(rgb)
        mask[0] = 255  # ignored
        Image.fromarray(mask).save(data / "masks" / f"{i}.png")
    pairs = labelled_pairs(data)
    model = Predictor(predictor_models.multiclass)
    local = ConfusionMatrix(4, 255)
    for image, mask in pairs:
        rgb, target = read_pair(image, mask)
        local.update(target, model.predict(rgb))
    matrix = confusion_on_ray(predictor_models.multiclass, {}, pairs, 4, workers=2, threads=1)
    np.testing.assert_array_equal(matrix.matrix, local.matrix)
    assert 0 < np.trace(local.matrix) < local.matrix.sum()

    code, stdout, err = cli("eval", predictor_models.multiclass, "--data", data, "--json")
    assert code == 0, err
    code, ray_stdout, err = cli("eval", predictor_models.multiclass, "--data", data, "--json", "--engine", "ray")
    assert code == 0, err
    expected, got = json.loads(stdout), json.loads(ray_stdout)
    for row in (expected, got):
        row["models"][0].pop("seconds")
    assert got == expected and got["models"][0]["miou"] == pytest.approx(local.mean_iou())
    code, _, err = cli("eval", predictor_models.multiclass, "--data", data, "--engine", "ray", "--html", tmp_path / "h")
    assert code == 2 and "--engine local" in err


def test_without_ray_local_predict_works_and_the_ray_engine_says_what_to_install(tmp_path, images, predictor_models):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n\n\nclass Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ray', 'torch'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n\n\n"
        "sys.meta_path.insert(0, Block())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
    base = [sys.executable, "-m", "segedge", "predict", str(predictor_models.multiclass), str(images / "a.png")]
    local = subprocess.run([*base, "-o", str(tmp_path / "local")], capture_output=True, text=True, env=env, timeout=120)
    assert local.returncode == 0, local.stderr
    refused = subprocess.run([*base, "-o", str(tmp_path / "ray"), "--engine", "ray"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert refused.returncode == 2 and len(lines(refused.stderr)) == 1, refused.stderr
    assert "--engine ray needs Ray: pip install 'segedge[ray]'" in refused.stderr


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_the_job_and_its_ray(tmp_path, predictor_models, signum, code):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):  # with 16-pixel tiles, a job of many seconds on any machine: it is stopped early
        Image.fromarray(scene(160, 160, i)).save(folder / f"{i:03d}.png")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "segedge", "predict", str(predictor_models.multiclass), str(folder), "-o", str(out),
         "--engine", "ray", "--tile", "16", "--overlap", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, **QUIET_RAY, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 240
        while not any(out.glob("*_mask.png")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1]
        ray_processes = psutil.Process(process.pid).children(recursive=True)  # the instance, its actors and tasks
        assert any("SegmentActor" in name(p) for p in ray_processes)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    assert lines(err) == [f"segedge: error: {'interrupted' if signum == signal.SIGINT else 'terminated'}"]
    _, alive = psutil.wait_procs(ray_processes, timeout=30)
    assert alive == []
    assert len(list(out.glob("*_mask.png"))) < 300  # stopped midway
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
