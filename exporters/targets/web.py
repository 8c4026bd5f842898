"""The web target: a folder a web developer drops into a site, run by onnxruntime-web in the browser.

    MODEL.onnx (+ its card) -> check ONNX Runtime's CPU kernels (onnxruntime-web's WASM build has them)
      -> model.onnx (the card embedded), card.json (the same card: onnxruntime-web does not expose an
         ONNX file's metadata), segedge.js, index.html, serve.py, ort/ (the pinned onnxruntime-web files),
         segedge-web.json (what was written: versions and hashes)
      -> built in a work folder, moved into place whole (`exporters.targets.folders`)

The JavaScript module preprocesses as the Predictor does; tests/test_web_target.py runs the page in
headless Chromium and compares its masks with the Predictor's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import onnx

from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.guards.fileio import work_folder
from runtimes.guards.outputs import Input
from runtimes.model.web_folder import MANIFEST, is_web_folder

from ..card_io import embed_card
from ..model_file import load_model
from .checks import run_check
from .folders import check_folder_output, place_folder
from .ort_web import OrtWeb, fetch_ort_web
from .prepare import onnx_opset
from .result import CheckReport, TargetBuildError, TargetResult
from .table import get_target

MODEL = "model.onnx"
FILES = Path(__file__).with_name("web_files")
SHIPPED = ("segedge.js", "index.html", "serve.py")


def check_web_output(folder: Path, inputs: Iterable[Input], *, overwrite: bool) -> Path:
    """Refuse a web folder output before any work (a file there, an input inside it, someone else's folder)."""
    return check_folder_output(folder, inputs, is_web_folder, overwrite=overwrite)


def write_web_folder(model_path: Path, folder: Path, card: ModelCard, *, ort_web: Path | None = None,
                     on_checks: Callable[[tuple[CheckReport, ...]], None] | None = None,
                     progress: Callable[[str], None] | None = None, overwrite: bool = False,
                     inputs: Iterable[Input] = ()) -> TargetResult:
    """Write the web folder of the ONNX file `model_path` (described by `card`) at `folder`.

    `ort_web`: a local copy of onnxruntime-web (see `exporters.targets.ort_web`); default npm.
    `inputs`: other files the run read, none of which may lie in `folder`.
    """
    say = progress or (lambda _message: None)
    spec = get_target("web")
    check_web_output(folder, [("the input model", model_path), *inputs], overwrite=overwrite)
    if card.precision not in spec.precisions:
        raise UsageError(f"target web takes {' or '.join(spec.precisions)} models, not {card.precision}")
    say(f"checking operators: {', '.join(c.value for c in spec.checks)}")
    checks = tuple(run_check(check, model_path) for check in spec.checks)
    if on_checks is not None:
        on_checks(checks)
    blocked = [row for report in checks if report.blocking for row in report.unsupported]
    if blocked:
        listed = ", ".join(f"{row.op_type} ({row.node})" for row in blocked[:5])
        raise TargetBuildError(f"{spec.runtime} cannot run {len(blocked)} node(s) of this model: {listed}", checks)
    model = load_model(model_path)
    with work_folder("segedge-web-") as work:
        staged = work / "web"
        staged.mkdir()
        onnx.save(embed_card(model, card), os.fspath(staged / MODEL))
        (staged / "card.json").write_text(card.to_json(), encoding="utf-8")
        for name in SHIPPED:
            shutil.copyfile(FILES / name, staged / name)
        say("fetching onnxruntime-web" + (f" from {ort_web}" if ort_web else " from npm"))
        runtime = fetch_ort_web(staged / "ort", work, ort_web)
        (staged / MANIFEST).write_text(json.dumps(_manifest(card, runtime), indent=2) + "\n", encoding="utf-8")
        place_folder(staged, folder)
    return TargetResult(
        target=spec.name, source=model_path, artefacts=(folder, folder / MODEL, folder / "segedge.js"), card=card,
        input_shape=None, opset=onnx_opset(model), precision=str(card.precision), checks=checks, verification=None,
        not_checked=spec.not_checked,
        notes=(spec.note, f"{runtime.to_dict()['package']} {runtime.version} from {runtime.source}",
               f"serve it: segedge serve {folder}  (or: cd {folder} && python3 serve.py)"),
    )


def _manifest(card: ModelCard, runtime: OrtWeb) -> dict[str, object]:
    return {"target": "web", "model": MODEL, "card": "card.json", "precision": str(card.precision),
            "model_name": card.name, "segedge_version": card.segedge_version, "onnxruntime_web": runtime.to_dict()}
