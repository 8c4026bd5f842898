"""The rows of `segedge report` and the rule that names the best one (no torch, no onnxruntime here).

The verdict means something only when the weights do: on trained weights with labels, the fastest
row within `budget` mIoU points of PyTorch fp32; on trained weights without labels, the fastest
whose argmax agreement meets its precision's preset; on random weights, none (accuracy cannot be
judged: how often a random network's int8 copy agrees with it says nothing about what a trained
one loses), and the fastest row is named for its speed alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


REPAIRED = "-repaired"  # the suffix of a repaired file's name in report.json's `files`


@dataclass(frozen=True)
class Variant:
    """One file a report makes and times: its precision, whose quantizer made it, and whether the repair
    search did (`segedge.report.repaired`)."""

    precision: str  # fp32, fp16, int8
    quantizer: str | None = None  # int8 only: "ort" (ONNX Runtime's QDQ) or "nncf" (NNCF's IR for OpenVINO)
    repaired: bool = False

    @property
    def runtime(self) -> str:
        """The runtime the file is made for (`quantize --for`): NNCF's IR is OpenVINO's, the rest ONNX Runtime's."""
        return "openvino" if self.quantizer == "nncf" else "onnxruntime"

    @property
    def name(self) -> str:
        """The file's name in report.json's `files`, as today's readers look it up: "fp32", "int8",
        "int8-nncf", "int8-repaired", "int8-nncf-repaired"."""
        return self.precision + ("-nncf" if self.quantizer == "nncf" else "") + (REPAIRED if self.repaired else "")


@dataclass
class ReportRow:
    precision: str  # fp32, fp16, int8; a file made elsewhere: the precision read from its graph
    provider: str
    runtime: str
    quantizer: str | None = None  # int8: whose quantizer made the file ("ort", "nncf"); None otherwise
    repaired: bool = False  # int8 made by the repair search (`segedge.report.repaired`), not plain int8
    status: str = "ok"
    reason: str = ""
    file: str | None = None
    openvino_hint: str | None = None  # the inference precision an OpenVINO row asked for (None: OpenVINO's choice)
    size_mb: float | None = None
    agreement: float | None = None
    parity_ok: bool | None = None
    miou: float | None = None
    miou_lost: float | None = None  # mIoU points lost against PyTorch fp32 (negative: gained)
    p50_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    throughput: float | None = None
    memory_mb: float | None = None
    peak_rss_mb: float | None = None
    gpu_memory_mb: float | None = None
    setup_s: float | None = None
    first_run_ms: float | None = None
    compile_s: float | None = None
    notes: list[str] = field(default_factory=list)
    # The `segedge export --target` whose file this row stands for, and so its device class (phones'
    # LiteRT, browsers' onnxruntime-web, ...); None for PyTorch, the reference.
    target: str | None = None

    def __post_init__(self) -> None:
        if self.target is None:
            self.target = target_of(self.runtime, self.provider)

    @property
    def shown_precision(self) -> str:
        """The precision as the table shows it: "int8, repaired" for the repair search's file."""
        return f"{self.precision}, repaired" if self.repaired else self.precision

    @property
    def label(self) -> str:
        return f"{self.shown_precision} / {self.provider} / {self.runtime}"


# The export target each ONNX Runtime provider's row stands for (`exporters.targets.table`).
_PROVIDER_TARGETS = {"cpu": "cpu", "cuda": "gpu", "tensorrt": "tensorrt", "openvino": "openvino", "coreml": "coreml",
                     "qnn": "qnn"}
# ... and each other runtime's: its own file format.
_RUNTIME_TARGETS = {"openvino": "openvino", "litert": "litert", "executorch": "executorch", "onnxruntime-web": "web"}


def target_of(runtime: str, provider: str) -> str | None:
    """The export target a row of `runtime` on `provider` stands for; None for PyTorch's rows."""
    if runtime == "onnxruntime":
        return _PROVIDER_TARGETS.get(provider.removesuffix(" (auto)"))
    return _RUNTIME_TARGETS.get(runtime)


@dataclass(frozen=True)
class Report:
    model: str
    input_size: tuple[int, int]
    threads: int
    rows: list[ReportRow]
    best: str | None
    best_reason: str
    calibration: str | None
    data: str | None
    machine: dict
    files: dict[str, str]
    seconds: float
    weights: str | None = None  # what the weights are: demo (recipe, held-out mIoU), a checkpoint, random
    agreement_on: str = "a generated image"  # what argmax agreement with PyTorch fp32 was measured on
    budget: float = 1.0  # mIoU points a row may lose against PyTorch fp32 and still be named
    # Per export target among the rows (several): the row `best_reason`'s rule names among that target's rows
    # (None: none meets it), so a report read for a phone or a browser names what to ship there.
    per_target: dict[str, str | None] = field(default_factory=dict)


def miou_floor(report: Report) -> float | None:
    """The lowest mIoU a row may have and be named (PyTorch fp32's minus the budget); None without one."""
    return _floor(_reference(report.rows), report.budget)


def _floor(reference: ReportRow | None, budget: float) -> float | None:
    return None if reference is None or reference.miou is None else reference.miou - budget / 100.0


def budget_points(budget: float) -> str:
    """'1 mIoU point', '0.5 mIoU points': the budget as the verdict and the plot say it."""
    return f"{budget:g} mIoU point{'' if budget == 1 else 's'}"


def _reference(rows: list[ReportRow]) -> ReportRow | None:
    """PyTorch fp32's row with its mIoU: what every row's accuracy is measured against."""
    return next((r for r in rows if r.runtime == "torch" and r.status == "ok" and r.miou is not None), None)


def fill_losses(rows: list[ReportRow]) -> None:
    """Each row's mIoU points lost against the PyTorch fp32 row (when both have an mIoU)."""
    reference = _reference(rows)
    if reference is None or reference.miou is None:
        return
    for row in rows:
        if row.miou is not None:
            row.miou_lost = round(100.0 * (reference.miou - row.miou), 4)


def best_per_target(rows: list[ReportRow], budget: float, random_weights: bool = False) -> dict[str, str | None]:
    """Each export target's best row label (the rule of `choose_best` among its rows), when the rows stand
    for more than one target; {} on random weights, where no row is named."""
    targets = list(dict.fromkeys(r.target for r in rows if r.target is not None))
    if random_weights or len(targets) < 2:
        return {}
    out: dict[str, str | None] = {}
    for target in targets:
        mine = [r for r in rows if r.target == target]
        if any(r.miou is not None for r in mine) or not any(r.parity_ok is not None for r in mine):
            best, _ = choose_best(rows, budget, among=lambda row: row.target == target)  # called at once: no late binding
        else:  # rows that ran the generated input only (the browser's page): their agreement's preset judges them
            best = min((r for r in mine if r.status == "ok" and r.parity_ok and r.p50_ms is not None), key=_p50, default=None)
        out[target] = best.label if best is not None else None
    return out


def choose_best(rows: list[ReportRow], budget: float, random_weights: bool = False,
                among: Callable[[ReportRow], bool] = lambda row: True) -> tuple[ReportRow | None, str]:
    """The fastest row whose accuracy holds, and the rule that picked it (none on random weights);
    `among`: the rows that may be named (the reference still judges them)."""
    ok = [r for r in rows if r.status == "ok" and r.p50_ms is not None]
    if not ok:
        return None, "no row ran"
    if random_weights:
        fastest = min(ok, key=_p50)
        return None, (f"the weights are random, and accuracy cannot be judged on random weights "
                      f"(train them with --weights demo, or give your checkpoint with --weights); "
                      f"fastest by speed alone, accuracy unknown: {fastest.label}, {_p50(fastest):.1f} ms p50")
    reference = _reference(ok)
    floor = _floor(reference, budget)  # the line `miou_floor` draws
    if reference is not None and floor is not None:
        eligible = [r for r in ok if r.miou is not None and r.miou >= floor]
        rule = f"fastest p50 with mIoU >= PyTorch fp32's {reference.miou:.4f} - {budget_points(budget)}"
    elif any(r.parity_ok is not None for r in ok):
        eligible = [r for r in ok if r.parity_ok]
        rule = "fastest p50 whose argmax agreement with PyTorch fp32 meets its precision's preset"
    else:
        eligible, rule = ok, "fastest p50 (no PyTorch reference: accuracy not checked)"
    eligible = [r for r in eligible if among(r)]
    if not eligible:
        return None, f"no row meets the accuracy rule ({rule})"
    return min(eligible, key=_p50), rule


def _p50(row: ReportRow) -> float:
    return row.p50_ms if row.p50_ms is not None else float("inf")
