"""The runtime side works where torch cannot be imported: `import runtimes`, a full Predictor run,
and `segedge predict`."""

import ast
import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image

from runtimes import Predictor
from tests.predictor_models import scene
from tests.torch_blocker import ROOT, torch_free_env


def run_python(code, env, cwd):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_the_blocker_blocks_torch(tmp_path):
    result = run_python("import torch", torch_free_env(tmp_path / "blocker"), tmp_path)
    assert result.returncode != 0 and "torch is blocked" in result.stderr


def test_predictor_runs_without_torch(tmp_path, predictor_models):
    image_path = tmp_path / "scene.png"
    Image.fromarray(scene(300, 200)).save(image_path)
    code = f"""
        import sys
        import numpy as np
        import runtimes
        from runtimes import Predictor, load_image
        from runtimes import predictor  # every runtime module used here
        from runtimes.imaging import image, postprocess, preprocess, tiling
        from runtimes.backends import onnxruntime_session as session
        p = Predictor({str(predictor_models.multiclass)!r}, tile_size=64)
        labels = p.predict({str(image_path)!r})
        probs = p.predict_proba(load_image({str(image_path)!r}))
        batch = p.predict_batch([{str(image_path)!r}, np.zeros((5, 7, 3), np.uint8)])
        assert labels.shape == (300, 200) and probs.shape == (4, 300, 200) and batch[1].shape == (5, 7)
        np.save({str(tmp_path / "labels.npy")!r}, labels)
        assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules)
        print("ok")
    """
    result = run_python(code, torch_free_env(tmp_path / "blocker"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    expected = Predictor(predictor_models.multiclass, tile_size=64).predict(image_path)
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), expected)


def test_segedge_predict_runs_without_torch(tmp_path, predictor_models):
    Image.fromarray(scene(40, 50)).save(tmp_path / "a.png")
    result = subprocess.run(
        [sys.executable, "-m", "segedge", "predict", str(predictor_models.multiclass), str(tmp_path / "a.png"),
         "-o", str(tmp_path / "out"), "--overlay", "--proba"],
        capture_output=True, text=True, env=torch_free_env(tmp_path / "blocker"), cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_mask.png", "a_overlay.png", "a_proba.npy"]


def test_no_runtime_module_imports_torch():
    for path in sorted((ROOT / "runtimes").glob("*.py")) + [ROOT / "segedge" / "cli" / "predict_cmd.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not (name == "torch" or name.startswith(("torch.", "segedge.models", "exporters"))), f"{path.name} imports {name}"
