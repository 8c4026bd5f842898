"""Building blocks of segedge's self-contained HTML pages (report and eval): no network, opens from disk.

Everything a page needs travels inside it: inline CSS, a few lines of vanilla JavaScript that
sort tables, images as `data:` URIs, charts as inline SVG. Every string that comes from the user
(model names, class names, paths, reasons) goes through `esc`.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

import numpy as np

from runtimes.guards.outputs import HTML_GENERATOR
from runtimes.imaging.palette import Color
from segedge.report.samples import AGREE_COLOR, RowSamples, Sample, SampleBook

DISPLAY_SIDE = 112  # CSS pixels of a thumbnail's long side (the PNG may hold more, for zooming)
MAX_MATRIX_CLASSES = 40  # a heat map past this is unreadable and heavy: the classes with most pixels

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d1d1f; max-width: 1600px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { margin: 0.2em 0; font-size: 1.05em; }
.muted { color: #666; font-size: 0.9em; }
.verdict { background: #eef6ee; border-left: 4px solid #2e7d32; padding: 10px 14px; margin: 12px 0; }
.verdict.none { background: #fdf0ef; border-left-color: #c62828; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th { background: #f4f4f6; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-order="up"]::after { content: " \\25B2"; }
table.sortable th[data-order="down"]::after { content: " \\25BC"; }
tr.best td { font-weight: 600; background: #f3faf3; }
.failed { color: #b00020; white-space: normal; }
.strip { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: flex-start; margin: 8px 0 22px; }
.side { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
img.plot { max-width: 720px; height: auto; }
figure { margin: 0; padding: 6px; border: 1px solid #e4e4e4; border-radius: 4px; background: #fafafa; }
figure .pics { display: flex; gap: 3px; }
figure .pic { text-align: center; font-size: 0.7em; color: #666; }
figure img { display: block; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: 0.75em; margin-top: 4px; }
.legend span { display: inline-block; margin: 2px 10px 2px 0; font-size: 0.8em; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #999; vertical-align: middle; margin-right: 4px; }
.bar { display: inline-block; height: 10px; background: #4a78c2; vertical-align: middle; }
.bar.neg { background: #c62828; } .bar.pos { background: #2e7d32; }
.bars td { min-width: 150px; }
"""

# Sorts a table.sortable by the clicked column: numbers numerically, text alphabetically, blanks last.
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var up = th.dataset.order !== "up";
      table.querySelectorAll("thead th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = up ? "up" : "down";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.sort, y = b.cells[column].dataset.sort;
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var nx = Number(x), ny = Number(y);
        var order = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def document(title: str, body: str) -> str:
    # The generator tag tells a later run that segedge wrote this page (runtimes.guards.outputs).
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{HTML_GENERATOR}\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n<script>{SORT_JS}</script>\n</body>\n</html>\n")


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(data: bytes, alt: str, size: tuple[int, int] | None = None, mime: str = "image/png", cls: str = "") -> str:
    """An <img> with its data inline; `size` (H, W) is scaled to DISPLAY_SIDE so the layout never jumps."""
    dims = ""
    if size is not None:
        scale = DISPLAY_SIDE / max(size)
        dims = f' width="{max(1, round(size[1] * scale))}" height="{max(1, round(size[0] * scale))}"'
    klass = f' class="{esc(cls)}"' if cls else ""
    return f'<img{klass} src="{data_uri(data, mime)}" alt="{esc(alt)}" title="{esc(alt)}"{dims}>'


def cell(text: object, sort: object = None, cls: str = "", raw: bool = False) -> str:
    """A <td> showing `text` (escaped unless `raw`), sorted by `sort` (default: the text; "" sorts last)."""
    klass = f' class="{esc(cls)}"' if cls else ""
    return f'<td{klass} data-sort="{esc(_sort_key(text if sort is None else sort))}">{text if raw else esc(text)}</td>'


def sortable_table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = (),
                   text_columns: int = 1, table_id: str = "") -> str:
    """A table whose columns sort on a click; the first `text_columns` headers are left-aligned."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    head = "".join(f'<th class="text">{esc(h)}</th>' if i < text_columns else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for i, row in enumerate(rows):
        klass = f' class="{esc(row_classes[i])}"' if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{klass}>" + "".join(row) + "</tr>")
    return f'<table class="sortable"{ident}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody>\n</table>"


def number(value: float | None, digits: int, percent: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return cell("", "")
    return cell(f"{value:.{digits}%}" if percent else f"{value:.{digits}f}", value)


def legend(book: SampleBook, classes: Sequence[int], what: str) -> str:
    """Colour swatches of `classes`, and the disagreement map's white."""
    items = [f'<span><i class="swatch" style="background:{_hex(book.colors[c])}"></i>{esc(book.class_name(c))}</span>'
             for c in classes if c < len(book.colors)]
    items.append(f'<span><i class="swatch" style="background:{_hex(AGREE_COLOR)}"></i>{esc(what)}</span>')
    return '<div class="legend">' + "".join(items) + "</div>"


def present_classes(book: SampleBook, limit: int = MAX_MATRIX_CLASSES) -> list[int]:
    """Classes that appear in any row's maps or the reference, most pixels first, at most `limit`, in class order."""
    totals = np.zeros(max(2, len(book.classes)), dtype=np.int64)
    for row in book.rows.values():
        m = row.between.matrix
        totals += m.sum(0) + m.sum(1)
    order = [int(c) for c in np.argsort(-totals, kind="stable") if totals[c] > 0][:limit]
    return sorted(order)


def figure(book: SampleBook, sample: Sample, pictures: Sequence[tuple[str, bytes, str]], what_differs: str) -> str:
    """One sample: captioned thumbnails side by side, and how many pixels differ (exact, at full size)."""
    pics = "".join(f'<div class="pic">{img(data, f"{caption}: {sample.name}", sample.size, mime, "sample")}{esc(caption)}</div>'
                   for caption, data, mime in pictures)
    caption = (f"{esc(sample.name)} &middot; {sample.wrong:,} of {sample.pixels:,} px {esc(what_differs)} "
               f"({sample.wrong_fraction:.2%})")
    return (f'<figure data-index="{sample.index}" data-wrong="{sample.wrong}" data-pixels="{sample.pixels}">'
            f'<div class="pics">{pics}</div><figcaption>{caption}</figcaption></figure>')


def strip(book: SampleBook, row: RowSamples, reference_caption: str | None, what_differs: str,
          own_caption: str = "this row", beside: str = "") -> str:
    """The row's samples: input, ground truth (when labelled), reference (when a row is the reference), the row, the
    difference; `beside` (a table, a chart) comes first and the samples flow around it."""
    figures = []
    for sample in row.samples:
        pictures = [("input", book.inputs[sample.index], "image/jpeg")]
        if sample.index in book.truths:
            pictures.append(("ground truth", book.truths[sample.index], "image/png"))
        if reference_caption is not None:
            pictures.append((reference_caption, book.references[sample.index], "image/png"))
        pictures += [(own_caption, sample.mask, "image/png"), ("differs", sample.diff, "image/png")]
        figures.append(figure(book, sample, pictures, what_differs))
    return '<div class="strip">' + beside + "".join(figures) + "</div>"


def bar(value: float | None, scale: float = 1.0, signed: bool = False) -> str:
    """A horizontal bar of `value` (0..scale; or -scale..scale, red below zero, when `signed`) and its number."""
    if value is None or not math.isfinite(value):
        return "-"
    width = min(80.0, 80.0 * abs(value) / scale)
    klass = ("neg" if value < 0 else "pos") if signed else ""
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return f'<span class="bar {klass}" style="width:{width:.1f}px"></span> {text}'


def heat_map(matrix: np.ndarray, names: Sequence[str], classes: Sequence[int], title: str) -> str:
    """A confusion matrix (rows: ground truth, columns: prediction) as an inline SVG, each row coloured by its share."""
    cell_px = max(8, min(34, 440 // max(1, len(classes))))
    longest = max((len(_name(names, c)) for c in classes), default=3)
    margin = 8 + 6 * min(18, longest)  # room for the labels, cut at 18 characters
    side = margin + cell_px * len(classes)
    width = side + margin // 2 + 4  # the column labels lean right past the last column
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="heat" width="{width}" height="{side + 4}" '
              f'role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>')]
    for i, c in enumerate(classes):
        name = esc(_name(names, c)[:18])
        y = margin + i * cell_px + cell_px * 0.7
        parts.append(f'<text x="{margin - 4}" y="{y:.1f}" font-size="10" text-anchor="end">{name}</text>')
        x = margin + i * cell_px + cell_px * 0.7
        parts.append(f'<text x="{x:.1f}" y="{margin - 4}" font-size="10" transform="rotate(-60 {x:.1f} {margin - 4})">{name}</text>')
    for i, truth in enumerate(classes):
        total = matrix[truth].sum()
        for j, predicted in enumerate(classes):
            count = int(matrix[truth, predicted])
            share = count / total if total else 0.0
            shade = round(255 * (1 - share))
            x, y = margin + j * cell_px, margin + i * cell_px
            parts.append(f'<rect x="{x}" y="{y}" width="{cell_px}" height="{cell_px}" '
                         f'fill="rgb({shade},{shade},255)" stroke="#fff" data-truth="{truth}" data-predicted="{predicted}" '
                         f'data-count="{count}"><title>{esc(_name(names, truth))} as {esc(_name(names, predicted))}: '
                         f"{count:,} px ({share:.1%})</title></rect>")
            if cell_px >= 28 and count:  # room for the share itself
                ink = "#fff" if share > 0.5 else "#333"
                parts.append(f'<text x="{x + cell_px / 2:.1f}" y="{y + cell_px * 0.62:.1f}" font-size="9" '
                             f'text-anchor="middle" fill="{ink}">{100 * share:.0f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _name(names: Sequence[str], c: int) -> str:
    return names[c] if c < len(names) else str(c)


def _hex(color: Color) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in color[:3])


def _sort_key(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)
