"""`segedge predict` on a live stream served from this machine (127.0.0.1 only): by FFmpeg itself
(`ffmpeg -re ... -f mpegts -listen 1 http://127.0.0.1:PORT/live.ts` sends frames in real time to
the one client that connects), and over RTSP by GStreamer's RTSP server (tests/rtsp_server.py), as an
IP camera serves. Skipped where no `ffmpeg` program is installed; the RTSP cases where the system's
Python lacks GStreamer's RTSP server (.ci/run installs it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtimes.stream.writers import read_mask_video

av = pytest.importorskip("av")
FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg program to serve a local stream")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where python3-gst-1.0 installs GStreamer's bindings
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")


def _has_rtsp_server() -> bool:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


RTSP = pytest.param("rtsp", marks=pytest.mark.skipif(not _has_rtsp_server(), reason="needs GStreamer's RTSP server "
                                                     "for the system's Python (gir1.2-gst-rtsp-server-1.0)"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(seconds: float, scheme: str = "http") -> tuple[subprocess.Popen, str]:
    """A 64 x 48 test pattern at 10 fps, sent in real time: by FFmpeg for `seconds`, to one client, over HTTP
    (`-listen 1`) or as a raw MPEG-TS over TCP (`tcp://...?listen=1`, what an encoder box or `ffmpeg -f mpegts`
    pushes on a LAN); or over RTSP (motion JPEG over RTP) by GStreamer's RTSP server until it is killed."""
    port = _free_port()
    if scheme == "rtsp":
        rtsp = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(port), "64", "48", "10"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert rtsp.stdout is not None and rtsp.stdout.readline().strip() == "ready"
        return rtsp, f"rtsp://127.0.0.1:{port}/live"
    url, served = ((f"http://127.0.0.1:{port}/live.ts", ["-listen", "1", f"http://127.0.0.1:{port}/live.ts"])
                   if scheme == "http" else (f"tcp://127.0.0.1:{port}", [f"tcp://127.0.0.1:{port}?listen=1"]))
    assert FFMPEG is not None
    server = subprocess.Popen([FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "quiet", "-re", "-f", "lavfi",
                               "-i", "testsrc=size=64x48:rate=10", "-t", str(seconds), "-c:v", "mpeg2video",
                               "-f", "mpegts", *served],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, url


def _predict(model: Path, url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "segedge", "predict", str(model), url, "-o", str(out), "--overlay"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out.parent)


def _wait_for_frames(out: Path, client: subprocess.Popen, timeout_s: float = 120.0, name: str = "live") -> None:
    """Until the mask video's temporary holds frames: past its header (about 500 bytes), it grows by a
    cluster of frames a second (runtimes.stream.writers)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and client.poll() is None:
        temporaries = list(out.glob(f".{name}_mask.mkv.*")) if out.is_dir() else []
        if temporaries and temporaries[0].stat().st_size > 1000:
            return
        time.sleep(0.2)
    raise AssertionError("no frame was written")


@pytest.mark.parametrize("scheme", ["http", "tcp", RTSP])
def test_ctrl_c_ends_a_stream_with_both_videos_closed_and_playable(tmp_path, predictor_models, scheme):
    server, url = _serve(120, scheme)
    out = tmp_path / "out"
    client = _predict(predictor_models.multiclass, url, out)
    name = "stream" if scheme == "tcp" else "live"  # a URL without a path: its outputs are named stream_*
    try:
        _wait_for_frames(out, client, name=name)
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
    finally:
        client.kill()
        server.kill()
        server.wait()
    assert client.returncode == 130, err
    assert sorted(os.listdir(out)) == [f"{name}_mask.mkv", f"{name}_overlay.mp4"]  # no temporaries
    masks = read_mask_video(out / f"{name}_mask.mkv")
    with av.open(str(out / f"{name}_overlay.mp4")) as container:
        overlays = list(container.decode(video=0))
    assert len(masks) >= 1 and len(overlays) == len(masks)
    assert masks[0].shape == (48, 64) and (overlays[0].width, overlays[0].height) == (64, 48)
    assert f"stopped; {len(masks)} frame" in err and err.strip().splitlines()[-1] == "segedge: error: interrupted"


@pytest.mark.parametrize("scheme", ["http", RTSP])
def test_a_stream_that_drops_is_one_line_and_keeps_what_was_written(tmp_path, predictor_models, scheme):
    server, url = _serve(120, scheme)
    out = tmp_path / "out"
    client = _predict(predictor_models.multiclass, url, out)
    try:
        _wait_for_frames(out, client)
        server.kill()  # the sender dies mid-stream
        server.wait()
        _, err = client.communicate(timeout=60)
    finally:
        client.kill()
        server.kill()
    assert client.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the stream ended or dropped after" in lines[0] and "kept out" in lines[0].replace(str(tmp_path) + "/", "")
    masks = read_mask_video(out / "live_mask.mkv")
    assert len(masks) >= 1 and f"({len(masks)} frames)" in lines[0]
    assert sorted(os.listdir(out)) == ["live_mask.mkv", "live_overlay.mp4"]


def test_duration_ends_a_stream_by_itself_with_both_videos_whole(tmp_path, predictor_models):
    server, url = _serve(120)
    out = tmp_path / "out"
    try:
        client = subprocess.run([sys.executable, "-m", "segedge", "predict", str(predictor_models.multiclass), url,
                                 "--duration", "1.5", "-o", str(out), "--overlay"],
                                capture_output=True, text=True, cwd=tmp_path, timeout=120)
    finally:
        server.kill()
        server.wait()
    assert client.returncode == 0, client.stderr
    masks = read_mask_video(out / "live_mask.mkv")
    assert 1 <= len(masks) <= 15 and f"{len(masks)} frame" in client.stderr  # 1.5 s of a 10 fps stream, late ones dropped
    with av.open(str(out / "live_mask.mkv")) as container:
        stream = container.streams.video[0]
        times = [float(frame.pts * stream.time_base) for frame in container.decode(video=0)]
    assert times[-1] - times[0] < 1.5
    assert sorted(os.listdir(out)) == ["live_mask.mkv", "live_overlay.mp4"]


def test_a_reader_slower_than_the_stream_gets_recent_frames_and_late_ones_are_dropped(tmp_path):
    from runtimes.stream.sources import LIVE_BUFFER, Video

    server, url = _serve(120)
    try:
        deadline = time.monotonic() + 60
        while True:  # the server listens once FFmpeg has started
            try:
                video = Video(url)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with video:
            assert video.live
            indices = []
            for frame in video.frames():
                indices.append(frame.index)
                if len(indices) == 6:
                    break
                time.sleep(1.0)  # the source sends 10 frames meanwhile; the buffer holds LIVE_BUFFER of them
    finally:
        server.kill()
        server.wait()
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert video.dropped >= 4 * (10 - LIVE_BUFFER)  # most of each second's frames were dropped, not queued
    assert indices[-1] - indices[1] >= 30  # so later frames are recent ones: the reader kept up with the stream
