"""The report page's repair section: for each "int8, repaired" row, the steps the search took and a plot of
what keeping each layer (block) alone in float recovered, read from the repaired file's card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtimes.guards.fileio import atomic_path
from runtimes.guards.outputs import PNG_KEY
from segedge.report.page import esc, img
from segedge.report.repaired import repair_record
from segedge.report.rows import REPAIRED, Report

SENSITIVITY_PLOT = "sensitivity.png"
SHOWN = 15  # layers per runtime on the plot
WHOSE = {"int8-repaired": "ONNX Runtime QDQ int8", "int8-nncf-repaired": "NNCF int8 IR for OpenVINO",
         "executorch-int8-repaired": "ExecuTorch PT2E int8 (XNNPACK)", "litert-int8-repaired": "LiteRT int8 (ai-edge-quantizer)"}


def records(report: Report) -> dict[str, dict[str, Any]]:
    """files key -> the repair record of each repaired file the report wrote."""
    found = {}
    for key, file in report.files.items():
        if key.endswith(REPAIRED):
            record = repair_record(Path(file))
            if record:
                found[key] = record
    return found


def write_sensitivity_plot(report: Report, path: Path) -> Path | str:
    """Recovered points per layer (block), one panel per repaired file; the reason when none is drawn."""
    ranked = {k: r for k, r in records(report).items() if r.get("sensitivity")}
    if not ranked:
        return "no int8 file needed layers kept in float"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'segedge[report]')"
    heights = [min(len(r["sensitivity"]), SHOWN) + 2 for r in ranked.values()]
    figure, axes = plt.subplots(len(ranked), 1, figsize=(8.5, 0.3 * sum(heights) + 0.6), dpi=120, squeeze=False,
                                gridspec_kw={"height_ratios": heights})
    for axis, (key, record) in zip(axes[:, 0], ranked.items()):
        rows = [r for r in record["sensitivity"] if r["recovered_points"] is not None][:SHOWN][::-1]
        kept = set(record.get("kept_layers", []))
        axis.barh([r["name"][:48] for r in rows], [r["recovered_points"] for r in rows],
                  color=["tab:red" if r["name"] in kept else "tab:grey" for r in rows])
        axis.set_title(f"{WHOSE.get(key, key)}: points recovered by keeping each alone in float (red: kept)",
                       fontsize=9)
        axis.tick_params(axis="y", labelsize=7)
        axis.grid(True, axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("points recovered against plain int8 (mIoU with labels, else argmax agreement)")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", metadata={PNG_KEY: "segedge report"})
    plt.close(figure)
    return path


def repair_html(report: Report, plot: Path | str | None) -> str:
    found = records(report)
    if not found:
        return ""
    parts = ["<h2>int8, repaired</h2>",
             '<p class="muted">Plain int8 missed the budget on these runtimes; the repair search tried, in order, the '
             "other calibration methods, the other weight schemes, then layers kept in float in the order below, "
             "stopping at the first within budget.</p>"]
    for key, record in found.items():
        steps = "".join(f"<tr><td>{esc(s['step'])}</td><td>{_points(s['lost_points'])}</td>"
                        f"<td>{'yes' if s['within_budget'] else 'no'}</td><td>{s['seconds']}</td></tr>"
                        for s in record.get("steps", []))
        parts.append(f"<h3>{esc(WHOSE.get(key, key))}</h3><p>Chosen: {esc(record.get('step', '?'))}; reproduce: "
                     f"<code>{esc(record.get('reproduce', ''))}</code>. Ranking cost: "
                     f"{esc(record.get('sensitivity_cost') or 'not ranked')}.</p>"
                     f"<table><tr><th>step</th><th>lost (points)</th><th>within budget</th><th>s</th></tr>{steps}</table>")
    if isinstance(plot, Path) and plot.is_file():
        parts.append(img(plot.read_bytes(), "points recovered per layer kept in float", cls="plot"))
    return "\n".join(parts)


def _points(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}"
