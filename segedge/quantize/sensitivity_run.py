"""`segedge quantize MODEL --sensitivity`: which layers int8 costs, ranked per runtime's quantizer.

For each backend asked for (ONNX Runtime's QDQ, NNCF for OpenVINO, ORT's QNN config), plain int8
is built and measured, then every layer (every block, for a large graph) is kept alone in that
runtime's higher precision and measured again on the same images (`segedge.quantize.sensitivity`).
The images and the judge are `quantize`'s: labelled `--data` (demo weights bring theirs) gives mIoU
points, else argmax agreement with fp32 on the calibration images.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from exporters.int8_options import DEFAULT_CALIB_COUNT, Method
from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.guards.fileio import work_folder
from runtimes.model.precision import Precision
from runtimes.backends.onnxruntime_session import check_model_path, open_session
from segedge.data.demo import with_demo_data
from segedge.quantize.adapters import Backend
from segedge.quantize.adapters.base import SUFFIXES, Adapter, RunBatch
from segedge.quantize.convert import SampleSource, check_calibration, sample_source
from segedge.quantize.judging import budget_judge
from segedge.quantize.prepare import refuse_quantized
from segedge.quantize.request import QuantizeRequest
from segedge.quantize.sensitivity import MOST_UNITS, Sensitivity, rank

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SensitivityRequest:
    model: Path
    backends: tuple[Backend, ...] = (Backend.onnxruntime,)
    calib: Path | None = None
    calib_count: int = DEFAULT_CALIB_COUNT
    data: Path | None = None
    data_limit: int | None = None
    method: Method = Method.minmax
    per_channel: bool = True
    exclude: tuple[str, ...] = ()
    budget: float = 1.0
    most_units: int = MOST_UNITS
    card_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.backends:
            raise UsageError("--sensitivity needs at least one backend")
        if self.most_units < 1:
            raise UsageError(f"--sensitivity-blocks must be >= 1, got {self.most_units}")


@dataclass(frozen=True)
class SensitivityResult:
    model: Path
    images: str  # what the variants were measured on
    rankings: tuple[Sensitivity, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "images": self.images, "seconds": round(self.seconds, 1),
                "rankings": [r.to_dict() for r in self.rankings]}


def run_sensitivity(request: SensitivityRequest, progress: Progress = lambda message: None) -> SensitivityResult:
    start = time.perf_counter()
    source = check_model_path(request.model)
    card = open_session(source, "cpu", overrides=request.card_overrides).card
    refuse_quantized(source, card, Precision.int8.value)
    if card.precision is not Precision.fp32:
        raise UsageError(f"{source} is {card.precision}: --sensitivity ranks the layers of the fp32 model")
    calib, data = with_demo_data(card, request.calib, request.data)
    request = dataclasses.replace(request, calib=calib, data=data)
    images = check_calibration(Precision.int8, request.calib, request.calib_count)
    quantize = QuantizeRequest(model=source, precision=Precision.int8, calib=request.calib, calib_count=request.calib_count,
                               data=request.data, data_limit=request.data_limit)
    samples = sample_source(quantize, card, images)
    count = sum(1 for _ in samples[0]())
    rankings = []
    with work_folder("segedge-sensitivity-") as workdir:
        for backend in request.backends:
            work = Path(workdir) / backend.value
            work.mkdir()
            adapter, reference, view = adapter_for(backend, request, source, card, images, work)
            judge = budget_judge(reference_runner(reference, request.card_overrides), view, samples, request.budget)
            progress(f"{backend.value}: plain int8")
            plain = judge(adapter.runner(adapter.build(adapter.start, work / f"plain{SUFFIXES.get(backend.value, '.onnx')}")))
            rankings.append(rank(adapter, adapter.start, plain, judge, count, work, progress, request.most_units))
    return SensitivityResult(source, samples[1], tuple(rankings), time.perf_counter() - start)


def adapter_for(backend: Backend, request: SensitivityRequest, source: Path, card: ModelCard, images: list[Path],
             work: Path) -> tuple[Adapter, Path, ModelCard]:
    """(the backend's adapter, the fp32 file it is compared with, the card to measure with)."""
    assert request.calib is not None
    if backend is Backend.onnxruntime:
        from segedge.quantize.adapters.ort_qdq import OrtQdq

        return (OrtQdq(source, request.calib, request.calib_count, card, work, method=request.method,
                       per_channel=request.per_channel, exclude=request.exclude, overrides=request.card_overrides),
                source, card)
    if backend is Backend.openvino:
        from segedge.quantize.adapters.openvino_nncf import NncfOpenVINO

        return (NncfOpenVINO(source, request.calib, request.calib_count, card, work, exclude=request.exclude,
                             overrides=request.card_overrides), source, card)
    if backend in (Backend.executorch, Backend.litert):
        return _from_torch(backend, request, card, images, work)
    from exporters.targets.prepare import prepare
    from exporters.targets.table import get_target
    from segedge.quantize.adapters.qnn_qdq import QnnQdq

    static = work / "static.onnx"  # QNN takes a static shape at opset 21: the graph the QNN target quantizes
    onnx.save(prepare(onnx.load(str(source)), get_target("qnn"), card.input_size).model, str(static))
    view = card.with_overrides(dynamic=False)
    return QnnQdq(static, images, view, card.input_size, work), static, view


def _from_torch(backend: Backend, request: SensitivityRequest, card: ModelCard, images: list[Path],
                work: Path) -> tuple[Adapter, Path, ModelCard]:
    """ExecuTorch and LiteRT quantize the PyTorch model, not the ONNX file: the one the card records (a zoo model and
    its demo weights, as the report's PyTorch row rebuilds it), judged against its fp32 file on the same runtime.

    The files are static (LiteRT's always are; a dynamic int8 ExecuTorch program can leave quantized convolutions
    outside XNNPACK, where ExecuTorch's portable kernels lack `dequantize_per_channel`), at the images' size when
    they share one that the model's size divisor divides (the report's edge rows do the same), else at the card's
    input size."""
    from exporters.targets.images import model_input
    from runtimes.imaging.image import load_image
    from segedge.parity.reference import reference_model

    if backend is Backend.executorch:
        from exporters.targets.executorch import require_executorch

        require_executorch()
    else:
        from exporters.targets.litert import require_litert_torch

        require_litert_torch()
    model, _ = reference_model(card.with_overrides(**request.card_overrides))
    rgb = [load_image(p) for p in images]
    sizes = {(int(x.shape[0]), int(x.shape[1])) for x in rgb}
    step = max(card.size_divisor, 1)
    size = sizes.pop() if len(sizes) == 1 and all(side % step == 0 for side in next(iter(sizes))) else card.input_size
    view = card.with_overrides(dynamic=False, input_size=size)
    inputs = [model_input(x, view, size) for x in rgb]
    if backend is Backend.executorch:
        from segedge.quantize.adapters.pt2e import Pt2eExecuTorch

        pt2e = Pt2eExecuTorch(model, view, size, inputs, work)
        return pt2e, pt2e.reference(work / "fp32.pte"), view
    from segedge.quantize.adapters.litert_aeq import AeqLiteRT

    aeq = AeqLiteRT(model, view, size, inputs, work)
    return aeq, aeq.reference(work / "fp32.tflite"), view


def reference_runner(path: Path, overrides: dict[str, Any] | None = None) -> RunBatch:
    """The fp32 file a backend's candidates are judged against, on that backend's runtime."""
    if path.suffix == ".pte":
        from runtimes.backends.executorch_session import open_executorch

        return open_executorch(path, overrides=overrides).run
    if path.suffix == ".tflite":
        from runtimes.backends.litert_session import open_litert

        return open_litert(path, overrides=overrides).run
    return open_session(path, "cpu", overrides=overrides).run
