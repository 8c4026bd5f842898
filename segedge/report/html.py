"""`segedge report`'s index.html: the table (sortable), the plot, the verdict and why, the machine, and per row
the sample images where its masks differ from PyTorch fp32's, with the per-class IoU changes beside them.

One self-contained page (see `segedge.report.page`): it opens from disk, with no network.
"""

from __future__ import annotations

from pathlib import Path

from segedge.report.repair_section import repair_html
from segedge.report.page import (
    bar,
    cell,
    document,
    esc,
    img,
    legend,
    number,
    present_classes,
    sortable_table,
    strip,
)
from segedge.report.rows import Report, ReportRow
from segedge.report.samples import SampleBook

HEADERS = ("precision", "provider", "runtime", "target", "status", "size MB", "agreement", "mIoU", "p50 ms", "p90 ms",
           "img/s", "mem MB", "peak RSS MB", "setup s", "first ms")


def report_page(report: Report, written: dict[str, Path | str], book: SampleBook | None = None) -> str:
    parts = [
        f"<h1>segedge report: {esc(report.model)}</h1>",
        f'<p class="muted">Input 1x3x{report.input_size[0]}x{report.input_size[1]}, {report.threads} threads for every '
        f"runtime; rows timed in interleaved rounds on the same input; {report.seconds:.0f} s in all. Calibration (int8): "
        f"{esc(report.calibration or 'n/a')}. Accuracy: argmax agreement with PyTorch fp32 on {esc(report.agreement_on)}"
        + (f"; mIoU on {esc(report.data)}" if report.data else " (no --data: no mIoU)") + ".</p>",
        _verdict(report),
        "<h2>Every row</h2>",
        '<p class="muted">Click a column to sort by it. Beside: p50 latency against accuracy, one point per row.</p>',
        f'<div class="side">{_table(report)}{_plot(written.get("plot"))}</div>',
        repair_html(report, written.get("sensitivity")),
        _samples(report, book),
        _machine(report),
    ]
    notes = [(r.label, n) for r in report.rows for n in r.notes]
    if notes:
        parts += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{esc(label)}: {esc(note)}</li>" for label, note in notes) + "</ul>"]
    return document(f"segedge report: {report.model}", "\n".join(parts))


def _verdict(report: Report) -> str:
    best = next((r for r in report.rows if r.label == report.best), None)
    if best is None:
        return f'<div class="verdict none" id="verdict"><strong>No row to ship</strong>: {esc(report.best_reason)}.</div>'
    lines = [f"<strong>Ship {esc(best.label)}</strong>: {_p50(best)}. Rule: {esc(report.best_reason)}."]
    faster = [r for r in report.rows if r.status == "ok" and r.p50_ms is not None and best.p50_ms is not None
              and r.p50_ms < best.p50_ms]
    if faster:
        lines.append("Faster rows, not chosen:<ul>" + "".join(f"<li>{esc(r.label)} ({_p50(r)}): {esc(_why_not(r))}</li>"
                                                               for r in faster) + "</ul>")
    if report.per_target:
        lines.append("Best per target (the device class a row stands for), by the same rule:<ul>" + "".join(
            f"<li>{esc(target)}: {esc(label or 'no row meets the rule')}</li>" for target, label in report.per_target.items())
            + "</ul>")
    return '<div class="verdict" id="verdict">' + "<br>".join(lines) + "</div>"


def _why_not(row: ReportRow) -> str:
    if row.parity_ok is False:
        agreement = f"{row.agreement:.2%}" if row.agreement is not None else "?"
        return f"its masks agree with PyTorch fp32's on {agreement} of pixels, below the {row.precision} preset"
    if row.miou is not None:
        return f"mIoU {row.miou:.4f} is below the budget"
    return "its accuracy could not be checked"


def _p50(row: ReportRow) -> str:
    return f"p50 {row.p50_ms:.1f} ms" if row.p50_ms is not None else "not timed"


def _table(report: Report) -> str:
    rows, classes = [], []
    for r in report.rows:
        status = "ok" if r.status == "ok" else f"failed: {r.reason}"
        if r.status == "ok" and r.parity_ok is False:
            status = "ok (accuracy below preset)"
        best = r.label == report.best
        rows.append([
            cell(r.shown_precision, cls="text"), cell(r.provider, cls="text"),
            cell(r.runtime + (" (best)" if best else ""), r.runtime, cls="text"), cell(r.target or "", cls="text"),
            cell(status, cls="text" + ("" if r.status == "ok" else " failed")),
            number(r.size_mb, 1), number(r.agreement, 2, percent=True), number(r.miou, 4), number(r.p50_ms, 1),
            number(r.p90_ms, 1), number(r.throughput, 2), number(r.memory_mb, 0), number(r.peak_rss_mb, 0),
            number(r.setup_s, 2), number(r.first_run_ms, 0),
        ])
        classes.append("best" if best else "")
    return sortable_table(HEADERS, rows, classes, text_columns=5, table_id="rows")


def _plot(plot: Path | str | None) -> str:
    if isinstance(plot, Path) and plot.is_file():
        return img(plot.read_bytes(), "p50 latency against accuracy, one point per row", cls="plot")
    return f'<p class="muted" id="no-plot">Plot skipped: {esc(plot or "not drawn")}.</p>'


def _samples(report: Report, book: SampleBook | None) -> str:
    if book is None or not book.started:
        return ""
    parts = ["<h2>Where the masks change</h2>",
             f'<p class="muted">Each row on {esc(book.source)}, compared with the masks of {esc(book.reference)} '
             "(the reference), the rows that change them most first. Shown per row: the images where it differs most "
             f"and the first {book.fixed} of every row; "
             "the pixel counts are exact, at the size the row ran at. \"differs\" is white where the row gives the "
             "reference's class, and the row's class colour where it does not. Beside: per class, the IoU between "
             "the reference's and the row's masks" + (" and the change of IoU against the ground truth" if book.labelled else "")
             + ", worst classes first.</p>"]
    if book.note:
        parts.append(f'<p class="muted">{esc(book.note)}.</p>')
    parts.append(legend(book, present_classes(book), f"same class as {book.reference}"))
    others = [(row, book.rows[row.label]) for row in report.rows if row.label in book.rows and row.label != book.reference]
    same = [row.label for row, kept in others if kept.wrong == 0]
    if same:  # a strip of blank maps tells nothing: one line says it
        parts.append(f'<p id="same-masks">Same masks as the reference on all {len(book.pool)} images: '
                     f'{esc(", ".join(same))}.</p>')
    for row, kept in sorted((o for o in others if o[1].wrong), key=lambda o: -o[1].wrong):  # most changed first
        summary = (f"differs from the reference on {kept.wrong:,} of {kept.pixels:,} pixels "
                   f"({kept.wrong / max(1, kept.pixels):.2%}) over {len(book.pool)} images")
        parts.append(f'<section class="sampled" data-label="{esc(row.label)}" data-wrong="{kept.wrong}" '
                     f'data-pixels="{kept.pixels}"><h3>{esc(row.label)}</h3><p class="muted">{summary}</p>'
                     f'{strip(book, kept, "reference", "differ", beside=_class_table(book, row.label))}</section>')
    return "\n".join(parts)


def _class_table(book: SampleBook, label: str) -> str:
    changes = book.class_changes(label)
    labelled = any(delta is not None for _, _, delta in changes)
    head = "<tr><th class=\"text\">class</th><th class=\"text\">IoU with reference</th>" + (
        '<th class="text">&Delta;IoU vs labels</th>' if labelled else "") + "</tr>"
    body = []
    for c, iou, delta in changes:
        extra = f'<td class="text">{bar(delta, 0.2, signed=True)}</td>' if labelled else ""
        body.append(f'<tr data-class="{c}"><td class="text">{esc(book.class_name(c))}</td>'
                    f'<td class="text">{bar(iou)}</td>{extra}</tr>')
    return f'<table class="classes bars"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _machine(report: Report) -> str:
    m = report.machine
    cpu = m.get("cpu", {})
    gpus = "; ".join(f"{g.get('name')} (driver {g.get('driver')}, CUDA {g.get('cuda', '?')})" for g in m.get("gpus", []))
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
    items = [
        ("CPU", f"{cpu.get('model', '?')}, {cpu.get('usable_cpus', '?')} usable CPUs of {cpu.get('logical_cores', '?')}"),
        ("CPU flags", " ".join(cpu.get("flags", [])) or "none of note"),
        ("GPU", gpus or "none"),
        ("threads", str(report.threads)),
        ("versions", versions),
    ]
    rows = "".join(f'<tr><th class="text">{esc(k)}</th><td class="text">{esc(v)}</td></tr>' for k, v in items)
    return f'<h2>Machine</h2><table id="machine">{rows}</table>'
