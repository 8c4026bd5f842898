"""`segedge report`'s files: report.md for people, report.json for machines, a latency-vs-accuracy PNG, and
index.html, one self-contained page with all of it and the sample images (`segedge.report.html`).

matplotlib is optional (`segedge[report]`): without it the PNG is skipped and the report says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from runtimes.guards.fileio import atomic_path, write_text_atomic
from runtimes.guards.outputs import PNG_KEY

from segedge.report.html import report_page
from segedge.report.repair_section import SENSITIVITY_PLOT, write_sensitivity_plot
from segedge.report.rows import Report, ReportRow, budget_points, miou_floor
from segedge.report.samples import SampleBook

# /2: rows carry `quantizer` and `repaired`; a repaired row's `precision` is "int8" (/1 wrote "int8, repaired").
SCHEMA = "segedge.report.run/2"
MARKDOWN, JSON, PLOT, HTML = "report.md", "report.json", "latency_vs_accuracy.png", "index.html"


def write_report(report: Report, folder: Path, samples: SampleBook | None = None) -> dict[str, Path | str]:
    """Write the four files; returns name -> path (or, for the plot, why it was skipped).

    `samples`: what `run_report` kept of each row's sample images, shown on index.html.
    """
    written: dict[str, Path | str] = {"json": folder / JSON, "markdown": folder / MARKDOWN, "html": folder / HTML}
    written["plot"] = write_plot(report, folder / PLOT)
    written["sensitivity"] = write_sensitivity_plot(report, folder / SENSITIVITY_PLOT)  # int8, repaired: its ranking
    write_text_atomic(folder / JSON, json.dumps(to_dict(report, written), indent=2))
    write_text_atomic(folder / MARKDOWN, to_markdown(report, written))
    write_text_atomic(folder / HTML, report_page(report, written, samples))
    return written


def to_dict(report: Report, written: dict[str, Path | str] | None = None) -> dict:
    return {
        "schema": SCHEMA,
        "model": report.model,
        "input_size": list(report.input_size),
        "batch": 1,
        "threads": report.threads,
        "best": {"row": report.best, "rule": report.best_reason, "budget_points": report.budget,
                 "per_target": report.per_target},
        "weights": report.weights,
        "agreement_on": report.agreement_on,
        "calibration": report.calibration,
        "data": report.data,
        "files": report.files,
        "plot": str(written["plot"]) if written else None,
        "seconds": report.seconds,
        "rows": [_row_dict(r) for r in report.rows],
        "machine": report.machine,
    }


def _row_dict(row: ReportRow) -> dict:
    out = asdict(row)
    out["label"] = row.label
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def to_markdown(report: Report, written: dict[str, Path | str]) -> str:
    cpu = report.machine["cpu"]
    versions = ", ".join(f"{k} {v}" for k, v in report.machine["versions"].items())
    gpus = "; ".join(f"{g['name']} (driver {g['driver']}, CUDA {g.get('cuda', '?')})" for g in report.machine["gpus"])
    lines = [
        f"# segedge report: {report.model}",
        "",
        f"Input 1x3x{report.input_size[0]}x{report.input_size[1]}, {report.threads} threads for every runtime; "
        f"rows timed in interleaved rounds on the same input.",
        "",
        f"- CPU: {cpu['model']}, {cpu['usable_cpus']} usable CPUs of {cpu['logical_cores']}; flags: {' '.join(cpu['flags']) or 'none of note'}",
        f"- GPU: {gpus or 'none'}",
        f"- versions: {versions}",
        f"- weights: {report.weights or 'n/a'}",
        f"- calibration (int8): {report.calibration or 'n/a'}",
        f"- accuracy: argmax agreement with PyTorch fp32 on {report.agreement_on}"
        + (f"; mIoU on {report.data}" if report.data else " (no --data: no mIoU)"),
        "",
        "| precision | provider | runtime | target | status | size MB | agreement | mIoU | mIoU lost (points) | p50 ms | p90 ms | img/s | mem MB | peak RSS MB | setup s | first ms |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        status = "ok" if r.status == "ok" else f"failed: {r.reason}"
        if r.status == "ok" and r.parity_ok is False:
            status = "ok (accuracy below preset)"
        marker = " **best**" if r.label == report.best else ""
        lines.append(
            f"| {r.shown_precision} | {r.provider} | {r.runtime}{marker} | {r.target or ''} | {_escape(status)} | {_num(r.size_mb, 1)} | "
            f"{_pct(r.agreement)} | {_num(r.miou, 4)} | {_num(r.miou_lost, 2)} | {_num(r.p50_ms, 1)} | {_num(r.p90_ms, 1)} | "
            f"{_num(r.throughput, 2)} | {_mem(r)} | {_num(r.peak_rss_mb, 0)} | {_num(r.setup_s, 2)} | {_num(r.first_run_ms, 0)} |"
        )
    lines += ["", f"**Best: {report.best or 'none'}** — {report.best_reason}."]
    if report.per_target:
        lines += ["", "Best per target (`segedge export --target`: the device class a row stands for), by the same rule:", ""]
        lines += [f"- {target}: {label or 'no row meets the rule'}" for target, label in report.per_target.items()]
    notes = [(r.label, n) for r in report.rows for n in r.notes]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {label}: {note}" for label, note in notes]
    plot = written["plot"]
    lines += ["", f"![latency vs accuracy]({PLOT})" if isinstance(plot, Path) else f"Plot skipped: {plot}.", ""]
    lines += ["mem is the growth of the process's resident set from before a row's first run to its peak "
              "(GPU memory in brackets); peak RSS is the whole process's while the row ran, every runtime loaded "
              "in it included; setup is session creation or model build; first is the first run's latency.", ""]
    return "\n".join(lines)


def write_plot(report: Report, path: Path) -> Path | str:
    """p50 latency against accuracy, one point per row that ran; the reason when it cannot be drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'segedge[report]')"
    rows = [r for r in report.rows if r.status == "ok"]
    use_miou = any(r.miou is not None for r in rows)
    points = [(r, r.p50_ms, r.miou if use_miou else r.agreement) for r in rows]
    drawn = [(r, x, y) for r, x, y in points if x is not None and y is not None]
    if not drawn:
        return "no row has both a latency and an accuracy"
    figure, axes = plt.subplots(figsize=(8.5, 4.5), dpi=120)
    # A legend, not labels beside the points: rows of one precision sit on top of each other.
    for row, x, y in drawn:
        best = row.label == report.best
        axes.scatter(x, y, s=90 if best else 40, marker="*" if best else "o",
                     label=row.label + (" (best)" if best else ""))
    floor = miou_floor(report) if use_miou else None
    if floor is not None:  # the budget line keeps the scale honest: without it the axis zooms into 0.01 points
        axes.axhline(floor, color="grey", linestyle="--", linewidth=1,
                     label=f"budget: PyTorch fp32 - {budget_points(report.budget)}")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    latencies = [x for _, x, _ in drawn]
    if max(latencies) > 20 * min(latencies):  # eager PyTorch next to int8 squeezes the fast rows together
        axes.set_xscale("log")
    axes.set_xlabel("p50 latency (ms, lower is better)")
    axes.set_ylabel("mIoU" if use_miou else "argmax agreement with PyTorch fp32")
    axes.set_title(f"{report.model}: {report.input_size[0]}x{report.input_size[1]}, {report.threads} threads", fontsize=9)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", metadata={PNG_KEY: "segedge report"})  # marked as segedge's
    plt.close(figure)
    return path


def _num(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _mem(row: ReportRow) -> str:
    text = _num(row.memory_mb, 0)
    return text + (f" (+{row.gpu_memory_mb:.0f} GPU)" if row.gpu_memory_mb is not None else "")


def _escape(text: str) -> str:
    return text.replace("|", "\\|")
