"""The trained demo model of the precision tests, exported and quantized once per test run.

`segedge.train.recipe.SMALL` is trained (about 9 minutes of one core: portable numerics), exported to fp32 ONNX and converted
to fp16 and int8 through the library's own paths. pytest-xdist workers share one copy: the work
happens under a file lock in the run's common temp folder, and `$SEGEDGE_TEST_CACHE` or
`$SEGEDGE_CACHE`, when set, keeps the trained weights between runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runtimes.guards.fileio import exclusive_lock
from segedge.train.recipe import SMALL, TrainedModel, trained_model

CALIB_COUNT = 32


@dataclass(frozen=True)
class DemoModels:
    trained: TrainedModel
    fp32: Path
    fp16: Path
    int8: Path

    @property
    def data(self) -> Path:
        """The dataset root: its val split is the labelled set, its train split the calibration set."""
        return self.trained.data


def shared_root(tmp_path_factory) -> Path:
    """The temp folder every xdist worker of this run shares (the basetemp without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_demo_models(tmp_path_factory) -> DemoModels:
    root = shared_root(tmp_path_factory)
    # .ci/run trains SMALL beside its set-up into $SEGEDGE_TEST_CACHE; then $SEGEDGE_CACHE; else this run's.
    named = os.environ.get("SEGEDGE_TEST_CACHE") or os.environ.get("SEGEDGE_CACHE")
    cache = Path(named) if named else root / "segedge-cache"
    trained = trained_model(SMALL, cache)
    folder = root / "precision-models"
    folder.mkdir(exist_ok=True)
    models = DemoModels(trained, folder / "demo_fp32.onnx", folder / "demo_fp16.onnx", folder / "demo_int8.onnx")
    with exclusive_lock(root / "precision-models.lock"):
        if not models.int8.exists():
            _make(models)
    return models


def _make(models: DemoModels) -> None:
    from segedge.export.run import ExportRequest, run_export
    from runtimes.model.precision import Precision
    from segedge.quantize import QuantizeRequest, run_quantize

    trained = models.trained
    run_export(ExportRequest(
        source=trained.config.model, output=models.fp32, weights=trained.checkpoint,
        input_size=trained.config.data.size, build_options=trained.build_options,
        card_fields={"classes": trained.classes},
    ))
    run_quantize(QuantizeRequest(model=models.fp32, precision=Precision.fp16, output=models.fp16, data=models.data))
    run_quantize(QuantizeRequest(model=models.fp32, precision=Precision.int8, output=models.int8,
                                 calib=models.data, calib_count=CALIB_COUNT, data=models.data))
