"""The rows of `segedge report` and the rule that names the best one (no torch, no onnxruntime here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReportRow:
    precision: str
    provider: str
    runtime: str
    status: str = "ok"
    reason: str = ""
    file: str | None = None
    size_mb: float | None = None
    agreement: float | None = None
    parity_ok: bool | None = None
    miou: float | None = None
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

    @property
    def label(self) -> str:
        return f"{self.precision} / {self.provider} / {self.runtime}"


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


def choose_best(rows: list[ReportRow], budget: float) -> tuple[ReportRow | None, str]:
    """The fastest row whose accuracy holds, and the rule that picked it."""
    ok = [r for r in rows if r.status == "ok" and r.p50_ms is not None]
    if not ok:
        return None, "no row ran"
    reference = next((r for r in ok if r.runtime == "torch" and r.miou is not None), None)
    if reference is not None and reference.miou is not None:
        floor = reference.miou - budget / 100.0
        eligible = [r for r in ok if r.miou is not None and r.miou >= floor]
        rule = f"fastest p50 with mIoU >= PyTorch fp32's {reference.miou:.4f} - {budget:g} points"
    elif any(r.parity_ok is not None for r in ok):
        eligible = [r for r in ok if r.parity_ok]
        rule = "fastest p50 whose argmax agreement with PyTorch fp32 meets its precision's preset"
    else:
        eligible, rule = ok, "fastest p50 (no PyTorch reference: accuracy not checked)"
    if not eligible:
        return None, f"no row meets the accuracy rule ({rule})"
    return min(eligible, key=_p50), rule


def _p50(row: ReportRow) -> float:
    return row.p50_ms if row.p50_ms is not None else float("inf")
