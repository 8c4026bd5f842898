"""`segedge eval --html DIR`: DIR/index.html, the models side by side on a labelled folder.

The table (sortable), per-class IoU bars, and per model its confusion matrix as a heat map and the
sample images where it is most wrong (and a fixed few): the input, the ground truth, the model's
mask and where it differs from the ground truth. One self-contained page (`segedge.report.page`).
"""

from __future__ import annotations

import math
from pathlib import Path

from runtimes.guards.fileio import write_text_atomic
from segedge.evaluate.run import EvalResult
from segedge.report.page import (
    bar,
    cell,
    document,
    esc,
    heat_map,
    legend,
    number,
    present_classes,
    sortable_table,
    strip,
)
from segedge.report.samples import SampleBook

HTML = "index.html"


def write_eval_page(result: EvalResult, book: SampleBook | None, folder: Path) -> Path:
    path = folder / HTML
    write_text_atomic(path, eval_page(result, book))
    return path


def eval_page(result: EvalResult, book: SampleBook | None = None) -> str:
    parts = [
        f"<h1>segedge eval: {esc(result.data)}</h1>",
        (f'<p class="muted">{result.images} labelled images, {len(result.classes)} classes; IoU per class, '
         "pixels labelled 255 ignored. Click a column to sort by it.</p>"),
        _table(result),
        "<h2>IoU per class</h2>",
        _bars(result),
    ]
    if book is not None and book.started:
        parts += _models(result, book)
    for note in result.notes:
        parts.append(f'<p class="muted">note: {esc(note)}</p>')
    return document(f"segedge eval: {result.data}", "\n".join(parts))


def _table(result: EvalResult) -> str:
    best = max(a.miou for _, a in result.scores)
    rows, classes = [], []
    for label, a in result.scores:
        per_class = (list(a.per_class_iou) + [math.nan] * len(result.classes))[: len(result.classes)]
        rows.append([cell(label, cls="text"), number(a.miou, 4), number(a.pixel_accuracy, 4),
                     *(number(v, 3) for v in per_class), number(a.seconds, 1)])
        classes.append("best" if a.miou == best else "")
    headers = ["model", "mIoU", "pixel acc", *result.classes, "s"]
    return sortable_table(headers, rows, classes, table_id="models")


def _bars(result: EvalResult) -> str:
    head = '<tr><th class="text">class</th>' + "".join(f'<th class="text">{esc(label)}</th>' for label, _ in result.scores) + "</tr>"
    body = []
    for c, name in enumerate(result.classes):
        values = [a.per_class_iou[c] if c < len(a.per_class_iou) else math.nan for _, a in result.scores]
        body.append(f'<tr data-class="{c}"><td class="text">{esc(name)}</td>'
                    + "".join(f'<td class="text">{bar(v)}</td>' for v in values) + "</tr>")
    return f'<table class="bars" id="iou-bars"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _models(result: EvalResult, book: SampleBook) -> list[str]:
    parts = ["<h2>Where each model is wrong</h2>",
             (f'<p class="muted">Confusion matrix (rows: ground truth, columns: the model; each row shaded by its share, in %) '
              f"and, on {esc(book.source)}, the images where the model is most wrong and the first {book.fixed} of the folder. "
              "\"differs\" is white where the model gives the ground truth's class (or the pixel is ignored), and the "
              "model's class colour where it does not; the pixel counts are exact.</p>")]
    if book.note:
        parts.append(f'<p class="muted">{esc(book.note)}.</p>')
    shown = present_classes(book)
    parts.append(legend(book, shown, "same class as the ground truth"))
    for label, accuracy in result.scores:
        row = book.rows.get(label)
        if row is None:
            continue
        summary = (f"mIoU {accuracy.miou:.4f}; wrong on {row.wrong:,} of {row.pixels:,} labelled pixels "
                   f"({row.wrong / max(1, row.pixels):.2%})")
        matrix = heat_map(row.between.matrix, book.classes, shown, f"{label}: confusion matrix")
        parts.append(f'<section class="sampled" data-label="{esc(label)}" data-wrong="{row.wrong}" '
                     f'data-pixels="{row.pixels}"><h3>{esc(label)}</h3><p class="muted">{summary}</p>'
                     f'{strip(book, row, None, "wrong", "model", beside=matrix)}</section>')
    return parts
