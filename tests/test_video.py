"""Video in, video out (issue 32): real PyAV encodes and decodes of small clips made here, the CLI in
process and as a subprocess, exact class round trips, and the bad inputs of a video."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtimes import Predictor
from runtimes.errors import UsageError
from runtimes.imaging.postprocess import overlay_image
from runtimes.stream.labelling import _Buffers
from runtimes.stream.pipeline import staged
from runtimes.stream.writers import mask_video, read_mask_video
from segedge.cli.video_source import seconds
from tests.predictor_models import scene

av = pytest.importorskip("av")
ROOT = Path(__file__).resolve().parents[1]
W, H, FRAMES, RATE = 64, 48, 10, 10


def make_clip(path: Path, *, frames: int = FRAMES, rate: int = RATE, audio: bool = False, codec: str = "libx264",
              key_every: int | None = None) -> list[np.ndarray]:
    """A clip of moving coloured rectangles (a key frame every `key_every` frames, else the codec's
    default); returns the frames as a decoder gives them back."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options={"g": str(key_every)} if key_every else {})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        sound = container.add_stream("aac", rate=8000, layout="mono") if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(scene(H, W, seed=i), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
            if sound is not None:
                samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.float32), format="fltp", layout="mono")
                samples.sample_rate, samples.pts = 8000, i * 800
                container.mux(sound.encode(samples))
        container.mux(stream.encode())
        if sound is not None:
            container.mux(sound.encode())
    return decoded_frames(path)


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [round(float(frame.pts * stream.time_base), 4) for frame in container.decode(video=0)]


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    return path, make_clip(path)


# -- the mask video: classes survive exactly -----------------------------------------------------
@pytest.mark.parametrize("classes, top", [(21, 255), (300, 299)])
def test_mask_video_round_trips_every_class_exactly(tmp_path, classes, top):
    rng = np.random.default_rng(0)
    dtype = np.uint8 if classes <= 256 else np.uint16
    labels = [rng.integers(0, top + 1, (H, W)).astype(dtype) for _ in range(6)]
    labels[0][0, :3] = (0, 1, top)  # the extremes, whatever the noise drew
    target = tmp_path / "m_mask.mkv"
    writer = mask_video(target, classes=classes, rate=Fraction(10), time_base=Fraction(1, 1000))
    for i, label_map in enumerate(labels):
        writer.write(label_map, i * 100)
    assert writer.close() and sorted(os.listdir(tmp_path)) == ["m_mask.mkv"]  # no temporary left
    back = read_mask_video(target)
    assert len(back) == len(labels)
    for got, want in zip(back, labels):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "ffv1"
        assert stream.format.name == ("gray" if classes <= 256 else "gray16le")


# -- segedge predict on a video file -------------------------------------------------------------
def test_video_gives_exact_masks_and_an_overlay_at_the_sources_rate_size_and_times(tmp_path, predictor_models):
    source = tmp_path / "clip.mp4"
    frames = make_clip(source, audio=True)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "segedge", "predict", str(predictor_models.multiclass), str(source),
                             "-o", str(out), "--overlay"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "audio track is dropped" in result.stderr and "10 frames segmented" in result.stderr
    assert sorted(os.listdir(out)) == ["clip_mask.mkv", "clip_overlay.mp4"]
    predictor = Predictor(predictor_models.multiclass)
    masks = read_mask_video(out / "clip_mask.mkv")
    assert len(masks) == FRAMES
    for mask, frame in zip(masks, frames):
        np.testing.assert_array_equal(mask, predictor.predict(frame))
    assert len({m.tobytes() for m in masks}) > 1 and len(np.unique(masks[0])) > 1  # the masks are not all one class
    with av.open(str(out / "clip_overlay.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.average_rate) == (W, H, RATE)
        assert not container.streams.audio
    assert frame_times(out / "clip_overlay.mp4") == frame_times(source) == frame_times(out / "clip_mask.mkv")
    overlays = decoded_frames(out / "clip_overlay.mp4")
    colors = predictor.card.colors()
    expected = [np.asarray(overlay_image(f, predictor.predict(f), colors)).astype(int) for f in frames]
    for i, overlay in enumerate(overlays):  # lossy H.264 of each frame's overlay: nearest to its own by far
        distances = [np.abs(overlay.astype(int) - e).mean() for e in expected]
        assert int(np.argmin(distances)) == i and distances[i] < 12, distances


def test_frames_every_writes_pngs_of_the_kept_frames(cli, tmp_path, clip, predictor_models):
    source, frames = clip
    code, _, err = cli("predict", predictor_models.multiclass, source, "--frames", tmp_path / "pngs", "--every", 3, "--overlay",
                       "-o", tmp_path / "unused")
    assert code == 0, err
    kept = [0, 3, 6, 9]
    assert sorted(os.listdir(tmp_path / "pngs")) == sorted(
        f"clip_{i:06d}_{kind}.png" for i in kept for kind in ("mask", "overlay"))
    assert not (tmp_path / "unused").exists()
    predictor = Predictor(predictor_models.multiclass)
    for i in kept:
        with Image.open(tmp_path / "pngs" / f"clip_{i:06d}_mask.png") as mask:
            assert mask.mode == "P"
            np.testing.assert_array_equal(np.asarray(mask), predictor.predict(frames[i]))


def test_fps_keeps_timestamps_of_the_frames_it_keeps(cli, tmp_path, clip, predictor_models):
    source, frames = clip
    code, _, err = cli("predict", predictor_models.multiclass, source, "--fps", 5, "-o", tmp_path / "out")
    assert code == 0, err
    mask_path = tmp_path / "out" / "clip_mask.mkv"
    assert frame_times(mask_path) == [0.0, 0.2, 0.4, 0.6, 0.8]
    with av.open(str(mask_path)) as container:
        assert container.streams.video[0].average_rate == 5
    predictor = Predictor(predictor_models.multiclass)
    for mask, i in zip(read_mask_video(mask_path), range(0, FRAMES, 2)):
        np.testing.assert_array_equal(mask, predictor.predict(frames[i]))


def test_a_second_run_replaces_its_own_video_but_never_a_users_file(cli, tmp_path, clip, predictor_models):
    source, _ = clip
    out = tmp_path / "out"
    assert cli("predict", predictor_models.multiclass, source, "-o", out)[0] == 0
    code, _, err = cli("predict", predictor_models.multiclass, source, "-o", out)
    assert code == 0, err  # segedge's own mask video, recognised by its comment
    (out / "clip_mask.mkv").write_bytes(b"the user's own file")
    code, _, err = cli("predict", predictor_models.multiclass, source, "-o", out)
    assert code == 2 and "clip_mask.mkv" in err and len(err.strip().splitlines()) == 1
    assert (out / "clip_mask.mkv").read_bytes() == b"the user's own file"


def test_start_and_duration_cut_a_part_that_counts_its_times_from_zero(cli, tmp_path, predictor_models):
    source = tmp_path / "long.mp4"
    frames = make_clip(source, frames=40, key_every=8)  # 4 s at 10 fps: the start lies between key frames
    predictor = Predictor(predictor_models.multiclass)
    # 1.25 s: the first frame at or after it is frame 13 (1.3 s); 1 s long: frames 13 to 22
    code, _, err = cli("predict", predictor_models.multiclass, source, "--start", "0:01.25", "--duration", 1, "-o", tmp_path / "out")
    assert code == 0 and "10 frames segmented" in err, err
    mask_path = tmp_path / "out" / "long_mask.mkv"
    assert frame_times(mask_path) == [round(0.1 * k, 4) for k in range(10)]
    for mask, i in zip(read_mask_video(mask_path), range(13, 23), strict=True):
        np.testing.assert_array_equal(mask, predictor.predict(frames[i]))
    code, _, err = cli("predict", predictor_models.multiclass, source, "--start", 1.25, "--duration", 1, "--every", 2,
                       "--frames", tmp_path / "pngs")
    assert code == 0, err
    kept = [13, 15, 17, 19, 21]  # --every counts from the start; the PNGs keep the source's frame numbers
    assert sorted(os.listdir(tmp_path / "pngs")) == [f"long_{i:06d}_mask.png" for i in kept]
    for i in kept:
        with Image.open(tmp_path / "pngs" / f"long_{i:06d}_mask.png") as mask:
            np.testing.assert_array_equal(np.asarray(mask), predictor.predict(frames[i]))


@pytest.mark.parametrize("text, value", [("90", 90.0), ("1.5", 1.5), ("1:30", 90.0), ("01:02:03.5", 3723.5), ("0", 0.0)])
def test_times_are_read_as_ffmpeg_takes_them(text, value):
    assert seconds(text, "--start") == value


@pytest.mark.parametrize("text", ["", "a", "-1", "1:", ":30", "1:60", "1:2:3:4", "nan", "inf", "1: 30"])
def test_a_time_that_is_not_one_is_a_usage_error_naming_the_option(text):
    with pytest.raises(UsageError, match=r"^--duration takes seconds .*got"):
        seconds(text, "--duration")


@pytest.mark.parametrize("args, words", [
    (["--every", "2", "--fps", "5"], "not both"),
    (["--proba"], "--proba"),
    (["--start", "5"], "--start 5 s lies past the end of"),
    (["--start", "1:75"], "--start takes seconds"),
    (["--duration", "0"], "duration must be > 0 s"),
])
def test_video_option_mistakes_are_one_usage_line(cli, tmp_path, clip, predictor_models, args, words):
    code, _, err = cli("predict", predictor_models.multiclass, clip[0], "-o", tmp_path / "out", *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_video_options_on_images_and_two_videos_are_refused(cli, tmp_path, clip, predictor_models):
    Image.fromarray(scene(20, 20)).save(tmp_path / "a.png")
    code, _, err = cli("predict", predictor_models.multiclass, tmp_path / "a.png", "--every", 2, "-o", tmp_path / "o")
    assert code == 2 and "video" in err
    code, _, err = cli("predict", predictor_models.multiclass, tmp_path / "a.png", "--start", 1, "-o", tmp_path / "o")
    assert code == 2 and "--start and --duration apply to a video" in err
    code, _, err = cli("predict", predictor_models.multiclass, "rtsp://127.0.0.1:9/cam", "--start", 1, "-o", tmp_path / "o")
    assert code == 2 and "--start needs a video file: rtsp://127.0.0.1:9/cam is live" in err  # refused before connecting
    code, _, err = cli("predict", predictor_models.multiclass, clip[0], tmp_path / "a.png", "-o", tmp_path / "o")
    assert code == 2 and "on its own" in err


# -- bad videos: one line, non-zero, what was written kept whole -----------------------------------
def _cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def test_bad_videos_are_one_line_and_keep_whole_what_was_written(cli, tmp_path, clip, predictor_models):
    source, frames = clip
    out = tmp_path / "first"
    assert cli("predict", predictor_models.multiclass, source, "-o", out)[0] == 0
    mask_bytes = (out / "clip_mask.mkv").read_bytes()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    truncated_mp4 = tmp_path / "cut.mp4"
    truncated_mp4.write_bytes(_cut(source.read_bytes(), 0.6))  # its index (moov) is at the end: nothing to read
    truncated_mkv = tmp_path / "cut.mkv"  # a mask video is a video too: cut after a few of its frames
    truncated_mkv.write_bytes(_cut(mask_bytes, 0.6))
    unknown = tmp_path / "unknown.mkv"
    unknown.write_bytes(mask_bytes.replace(b"V_FFV1", b"V_QQQQ"))  # a codec id no decoder claims
    corrupt = bytearray(source.read_bytes())
    corrupt[len(corrupt) // 3 : len(corrupt) // 3 + 2000] = np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (tmp_path / "corrupt.mp4").write_bytes(bytes(corrupt))
    cases = {garbage: "cannot open", truncated_mp4: "cannot open", unknown: "codec", truncated_mkv: "truncated",
             tmp_path / "corrupt.mp4": "cannot decode", tmp_path / "missing.mp4": "not found"}
    for path, words in cases.items():
        target = tmp_path / f"out_{path.stem}"
        code, _, err = cli("predict", predictor_models.multiclass, path, "-o", target)
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, (path, err)
        written = sorted(os.listdir(target)) if target.exists() else []
        if "kept" in err:  # frames before the failure: a finalised mask video that decodes to the end
            assert written == [f"{path.stem}_mask.mkv"]
            masks = read_mask_video(target / written[0])
            assert 0 < len(masks) < FRAMES and f"({len(masks)} frames)" in err
        else:
            assert written == []
    predictor = Predictor(predictor_models.multiclass)
    kept = read_mask_video(tmp_path / "out_cut" / "cut_mask.mkv")
    readable = decoded_frames(truncated_mkv)  # what a decoder makes of the frames before the cut
    assert len(kept) == len(readable)
    for mask, frame in zip(kept, readable):
        np.testing.assert_array_equal(mask, predictor.predict(frame))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="camera indices name /dev/videoN on Linux")
def test_a_camera_that_is_not_there_is_one_line_naming_its_device(cli, tmp_path, predictor_models):
    index = next(i for i in range(63, 0, -1) if not Path(f"/dev/video{i}").exists())
    code, _, err = cli("predict", predictor_models.multiclass, str(index), "-o", tmp_path / "o")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"camera {index} (/dev/video{index}, v4l2): cannot open the camera" in err
    assert not (tmp_path / "o").exists()


def test_a_frame_over_the_pixel_limit_is_refused_before_decoding(cli, tmp_path, clip, predictor_models):
    code, _, err = cli("predict", predictor_models.multiclass, clip[0], "--max-pixels", W * H - 1, "-o", tmp_path / "o")
    assert code == 1 and "decompression-bomb limit" in err and not (tmp_path / "o").exists()


def test_without_pyav_a_video_is_one_line_naming_the_extra(tmp_path, predictor_models, clip):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('av', 'torch') or name.startswith(('av.', 'torch.')):\n"
        "            raise ImportError(name + ' is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
    result = subprocess.run([sys.executable, "-m", "segedge", "predict", str(predictor_models.multiclass), str(clip[0]),
                             "-o", str(tmp_path / "o")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == "segedge: error: video and streams need PyAV: pip install 'segedge[video]'"
    imports = subprocess.run([sys.executable, "-c", "import runtimes, runtimes.stream.sources, runtimes.stream.writers, "
                              "runtimes.stream.labelling; import sys; print('av' in sys.modules)"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert imports.returncode == 0 and imports.stdout.strip() == "False", imports.stderr


# -- Predictor.predict_stream ----------------------------------------------------------------------
def _frames(n: int) -> list[np.ndarray]:
    sizes = [(48, 64), (48, 64), (33, 70), (120, 90), (48, 64)]
    return [scene(*sizes[i % len(sizes)], seed=i) for i in range(n)]


@pytest.mark.parametrize("options", [{}, {"tile_size": 64}, {"resize_long": 40}, {"runtime": "openvino"}],
                         ids=["as-is", "tiled", "resized", "openvino"])  # the 120 x 90 frames tiled; all resized; argmax in graph
def test_predict_stream_gives_predicts_masks_in_order(predictor_models, options):
    if options.get("runtime") == "openvino":
        pytest.importorskip("openvino")
    predictor = Predictor(predictor_models.multiclass, **options)
    frames = _frames(12)
    got = list(predictor.predict_stream(iter(frames)))
    assert len(got) == len(frames)
    for mask, frame in zip(got, frames):
        np.testing.assert_array_equal(mask, predictor.predict(frame))


def test_stream_model_inputs_are_handed_back_and_reused_by_size():
    inputs = _Buffers(keep=2)
    first = inputs.take((3, 32, 64))
    inputs.give(first)
    assert inputs.take((3, 32, 64)) is first  # the same memory again: no new pages per frame
    assert inputs.take((3, 32, 64)) is not first  # taken, it is not handed out twice
    others = [inputs.take((3, 64, 64)) for _ in range(3)]
    for array in [first, *others]:
        inputs.give(array)
    assert inputs.take((3, 32, 64)) is not first  # at most `keep` kept: the oldest went first
    assert inputs.take((3, 64, 64)) is others[2] and inputs.take((3, 64, 64)) is others[1]


def test_predict_stream_reads_ahead_no_further_than_its_queues(predictor_models):
    predictor = Predictor(predictor_models.multiclass)
    pulled = []

    def frames():
        for i in range(100):
            pulled.append(i)
            yield scene(48, 64, seed=i)

    stream = predictor.predict_stream(frames(), depth=1)
    next(stream)
    time.sleep(0.5)  # let every stage fill its queue: the bound holds however long this is
    # one frame given out; per stage one in hand and one queued, plus the input's: at most 1 + 2 x 4 pulled
    assert len(pulled) <= 9
    stream.close()


def test_smoothing_is_an_exponential_average_of_the_probabilities(predictor_models):
    predictor = Predictor(predictor_models.multiclass)
    frames = [scene(48, 64, seed=i) for i in range(5)]
    got = list(predictor.predict_stream(frames, smoothing=0.6))
    average = None
    for mask, frame in zip(got, frames):
        probabilities = predictor.predict_proba(frame)
        average = probabilities if average is None else 0.6 * average + (1 - 0.6) * probabilities
        np.testing.assert_array_equal(mask, average.argmax(axis=0))
    assert any((m != predictor.predict(f)).any() for m, f in zip(got[1:], frames[1:]))  # it does change labels
    with pytest.raises(UsageError, match="smoothing"):
        predictor.predict_stream(frames, smoothing=1.0)


def test_a_failing_stage_raises_after_the_items_before_it():
    def stage(x):
        if x == 3:
            raise ValueError("three")
        return x * 10

    got = []
    with pytest.raises(ValueError, match="three"):
        for value in staged(range(6), [stage, lambda x: x + 1]):
            got.append(value)
    assert got == [1, 11, 21]
