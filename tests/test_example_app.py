"""examples/segment_server.py: the example app serves masks over HTTP with torch unimportable."""

import io
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from runtimes import Predictor
from tests.predictor_models import scene
from tests.torch_blocker import ROOT, torch_free_env

APP = ROOT / "examples" / "segment_server.py"


def test_example_is_short():
    assert len(APP.read_text().splitlines()) <= 40


@pytest.fixture
def server(tmp_path, predictor_models):
    process = subprocess.Popen(
        [sys.executable, str(APP), str(predictor_models.multiclass), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=torch_free_env(tmp_path / "blocker"), cwd=tmp_path,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on "), process.stderr.read()
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(url, body):
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=60) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_server_answers_with_the_mask_and_rejects_garbage(server, predictor_models):
    image = scene(37, 53)
    upload = io.BytesIO()
    Image.fromarray(image).save(upload, format="PNG")
    status, kind, body = post(server, upload.getvalue())
    assert status == 200 and kind == "image/png"
    with Image.open(io.BytesIO(body)) as mask:
        assert mask.mode == "P" and mask.size == (53, 37)
        np.testing.assert_array_equal(np.asarray(mask), Predictor(predictor_models.multiclass).predict(image))
    with pytest.raises(urllib.error.HTTPError) as failure:
        post(server, b"not an image")
    assert failure.value.code == 400
