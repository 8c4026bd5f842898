"""The report's "int8, repaired" rows: where plain int8 misses the budget, the repair search's file beside it.

For each int8 file the report made (ONNX Runtime's QDQ, NNCF's IR for OpenVINO) whose loss against
fp32 (mIoU points with labels, else argmax-agreement points) is over `--budget`, the repair search
of that runtime's quantizer (`segedge.quantize.repair`) runs from it, and its best candidate is
written as `<name>_int8_repaired.onnx` / `<name>_int8_repaired.xml`. Its row is timed with the
others, so the table shows what the layers kept in float cost in speed; its notes name them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporters.calibration import calibration_images
from runtimes.model.card import ModelCard
from runtimes.guards.fileio import work_folder
from runtimes.backends import RuntimeSpec, backend_for_path
from runtimes.backends.selection import Runtime
from runtimes.model.precision import Precision
from runtimes.backends.onnxruntime_session import open_session
from runtimes.measure.timing import one_line
from segedge.quantize.adapters.base import Adapter
from segedge.quantize.convert import sample_source
from segedge.quantize.judging import budget_judge, lost_points, measured
from segedge.quantize.repair import Repair, Step, repair
from segedge.quantize.request import QuantizeRequest
from segedge.quantize.run import QuantizeResult
from segedge.quantize.search_repair import record_repair

Progress = Callable[[str], None]


def repaired_file(quantized: QuantizeResult, runtime: Runtime, fp32: Path, card: ModelCard, calib: Path,
                  count: int, data: Path | None, data_limit: int | None, budget: float, overrides: dict[str, Any],
                  progress: Progress) -> Path | str | None:
    """The repaired file beside `quantized`, why there is none (a reason), or None when plain int8 is within budget."""
    if quantized.agreement.finite and lost_points(quantized.agreement) <= budget:
        return None
    try:
        with work_folder("segedge-report-repair-") as workdir:
            work = Path(workdir)
            adapter = _adapter(runtime, fp32, calib, count, card, work, overrides)
            request = QuantizeRequest(model=fp32, precision=Precision.int8, calib=calib, calib_count=count, data=data,
                                      data_limit=data_limit)
            samples = sample_source(request, card, calibration_images(calib, count))
            judge = budget_judge(open_session(fp32, "cpu", overrides=overrides).run, card, samples, budget)
            start = Step("start", adapter.start, measured(quantized.agreement, lambda lost: lost <= budget),
                         quantized.path, 0.0, adapter.reproduce(adapter.start))
            result = repair(adapter, judge, sum(1 for _ in samples[0]()), work, progress, start=start)
            if result.best is start:
                return "repair: no step lost less than plain int8"
            return _write(result, quantized.path)
    except Exception as exc:  # noqa: BLE001 - the row says why; the report goes on
        return f"repair failed: {one_line(exc)}"


def repair_record(file: Path) -> dict[str, Any]:
    """The repair record in a repaired file's card ({} when it has none)."""
    return dict(_card(file).calibration.get("repair") or {}) if file.is_file() else {}


def repair_note(file: Path | str) -> str | None:
    """What the repaired file's card says was kept higher and why, for its row's notes."""
    if not isinstance(file, Path):
        return None
    record = repair_record(file)
    why = ", ".join(f"{name} ({points:+.2f} points alone)" for name, points in record.get("recovered_points_alone", {}).items()
                    if points is not None)
    return f"repaired: {record.get('step', '?')}" + (f"; kept in float: {why}" if why else "")


def _adapter(runtime: Runtime, fp32: Path, calib: Path, count: int, card: ModelCard, work: Path,
             overrides: dict[str, Any]) -> Adapter:
    if runtime is Runtime.openvino:
        from segedge.quantize.adapters.openvino_nncf import NncfOpenVINO

        return NncfOpenVINO(fp32, calib, count, card, work, overrides=overrides)
    from segedge.quantize.adapters.ort_qdq import OrtQdq

    return OrtQdq(fp32, calib, count, card, work, overrides=overrides)


def _write(result: Repair, plain: Path) -> Path:
    target = plain.with_name(f"{plain.stem}_repaired{plain.suffix}")
    record_repair(result.best.path, result.record(), target)
    return target


def _card(file: Path) -> ModelCard:
    if file.suffix == ".xml":
        from exporters.nncf_int8 import ir_card

        card = ir_card(file)
        assert card is not None
        return card
    backend = backend_for_path(file)  # ONNX Runtime, ExecuTorch's .pte, LiteRT's .tflite
    return backend.open(file, RuntimeSpec(backend.name), {}).card
