"""A two-node Ray cluster on this machine (`ray start --head`, then `ray start --address`), token
authentication on: `segedge predict --engine ray --address` runs its actors on both nodes and
writes a local run's bytes; without the token, or at a closed port, it fails in one line.

The cluster lives in a temporary folder of its own; afterwards its processes (those naming that
folder, and theirs) are stopped by id: `ray stop` would stop every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from tests.predictor_models import scene

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")  # the CLI of the Ray this interpreter imports


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ray_cli(*args: object, env: dict[str, str]) -> None:
    result = subprocess.run([str(RAY), *map(str, args)], capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def stop_cluster(folder: Path) -> None:
    """Terminate (then kill) the processes whose command line names `folder`, and their children."""
    me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(folder) in arg for arg in process.info["cmdline"] or ()):
                for member in (process, *process.children(recursive=True)):
                    found.setdefault(member.pid, member)
    members = [p for pid, p in found.items() if pid not in me]
    for process in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(members, timeout=5)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


@pytest.fixture
def two_nodes() -> Iterator[tuple[str, dict[str, str]]]:
    """(address, environment) of a head and a second node of one CPU each."""
    folder = Path(tempfile.mkdtemp(prefix="segray", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
    token = folder / "token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    address = f"127.0.0.1:{free_port()}"
    try:
        ray_cli("start", "--head", "--port", address.split(":")[1], "--node-ip-address", "127.0.0.1", "--num-cpus", 1,
                "--disable-usage-stats", "--include-dashboard=false", "--dashboard-port", free_port(),
                "--temp-dir", folder, env=env)
        ray_cli("start", "--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", 1,
                "--disable-usage-stats", env=env)
        yield address, env
    finally:
        stop_cluster(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_predict_runs_actors_on_both_nodes(two_nodes, cli, tmp_path, predictor_models):
    address, env = two_nodes
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    for i in range(8):
        Image.fromarray(scene(30 + i, 50 - i, i)).save(images / ("sub" if i % 2 else ".") / f"{i}.png")
    args = ["predict", str(predictor_models.multiclass), str(images), "-r", "--overlay", "--proba"]
    assert cli(*args, "-o", tmp_path / "local")[0] == 0
    out = tmp_path / "ray"
    # Ray Data hands out blocks as soon as one actor is up; under load the first can finish all
    # eight before the second has loaded its model. Waiting for the whole pool makes both nodes work.
    pooled = {**env, "RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "240"}
    result = subprocess.run(
        [sys.executable, "-m", "segedge", *args, "-o", str(out), "--engine", "ray", "--address", address, "--workers", "2"],
        capture_output=True, text=True, env=pooled, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # Each actor names its node in the rows it returns: "2 nodes" is two node ids among the images' rows.
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"8 of 8 images segmented into {out} (2 Ray workers on 2 nodes)"]
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert len(written) == 24
    assert written == sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert all((out / p).read_bytes() == (tmp_path / "local" / p).read_bytes() for p in written)

    # Without the cluster's token, or at an address nothing listens on: one line, not Ray's retry log.
    tokenless = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    for address_, environment, message in ((address, tokenless, "Authentication token is missing or incorrect"),
                                           (f"127.0.0.1:{free_port()}", env, "Connection refused")):
        result = subprocess.run([sys.executable, "-m", "segedge", *args, "-o", str(tmp_path / "no"), "--engine", "ray",
                                 "--address", address_], capture_output=True, text=True, env=environment, cwd=tmp_path,
                                timeout=300)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1 and len(lines) == 1 and message in lines[0], result.stderr
