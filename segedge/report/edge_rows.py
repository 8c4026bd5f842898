"""The report's LiteRT and ExecuTorch rows (`--runtimes ...,litert,executorch`): the files a phone ships.

Each runtime's file is converted from the PyTorch model by its own tools (`segedge export --target
litert|executorch`, `exporters.targets.from_torch`): fp32, and int8 made by its own quantizer
(ai-edge-quantizer for LiteRT, PT2E with XNNPACKQuantizer for ExecuTorch) on the report's
calibration images. The files are static at the timed size (LiteRT takes static shapes only; a
static ExecuTorch program keeps the resize inside XNNPACK), and are timed in the same interleaved
rounds as every other row through the Predictor's backend.

A static file takes one size, so mIoU on labelled images of another size is measured with a second
file converted at that size (`NAME_int8_96x96.tflite`), as an app ships the file for its camera's
size; the row's notes say so. An ONNX file made elsewhere has no PyTorch model to convert: its
rows say so.

Where plain int8 loses more than `--budget` against its fp32 file (argmax-agreement points on the
calibration images, as its export verifies it), segedge's repair search for that runtime's quantizer
(`segedge.quantize.adapters.pt2e` for ExecuTorch: observer, then layers kept in float;
`segedge.quantize.adapters.litert_aeq` for LiteRT: ops kept in float) makes an "int8, repaired" row
beside it (`NAME_int8_repaired.pte` / `.tflite`), its kept layers in its notes; the repaired file's
card holds the search's steps and ranking, which the report page shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes.backends import RuntimeSpec, backend_named
from runtimes.errors import CardError
from runtimes.measure.timing import Runner, one_line
from runtimes.model.card import ModelCard
from runtimes.model.onnx_info import model_megabytes
from runtimes.model.precision import Precision
from segedge.report.accuracy import calibration_folder
from segedge.report.rows import ReportRow

Progress = Callable[[str], None]
EDGE_RUNTIMES = ("litert", "executorch")
_SUFFIX = {"litert": ".tflite", "executorch": ".pte"}
_QUANTIZER = {"litert": "ai-edge-quantizer", "executorch": "pt2e"}
_PROVIDER = "cpu, XNNPACK"


def edge_file(out: Path, stem: str, runtime: str, precision: str, size: tuple[int, int] | None = None,
              repaired: bool = False) -> Path:
    """`NAME_int8.tflite` at the timed size; `NAME_int8_96x96.tflite` converted at another size for mIoU;
    `NAME_int8_repaired.pte` made by the repair search."""
    at = f"_{size[0]}x{size[1]}" if size is not None else ""
    return out / f"{stem}_{precision}{'_repaired' if repaired else ''}{at}{_SUFFIX[runtime]}"


@dataclass
class EdgeRow:
    """A row to time: its ReportRow, how to open its runner, and its runner at another size (mIoU)."""

    row: ReportRow
    build: Callable[[], Runner]
    precision: Precision
    at_size: Callable[[tuple[int, int]], Runner]


class EdgeRows:
    """The LiteRT / ExecuTorch rows of one report: one PyTorch model, converted once per file."""

    def __init__(self, card: ModelCard | None, weights: Path | None, out: Path, stem: str, calib: Path | None,
                 calib_count: int, threads: int, overwrite: bool, progress: Progress,
                 budget: float | None = None, data: Path | None = None) -> None:
        """`budget`: the mIoU (or agreement) points plain int8 may lose before a repaired row is made (None:
        never); `data`: labelled images the repair search judges by (else the calibration images)."""
        self.card, self.weights, self.out, self.stem = card, weights, out, stem
        self.calib, self.calib_count, self.threads, self.overwrite = calib, calib_count, threads, overwrite
        self.progress, self.budget, self.data = progress, budget, data
        self.files: dict[str, Path] = {}  # report.json's `files`: "litert-int8" -> its path
        self._model: Any = None
        self._chosen: dict[str, Any] = {}  # the options the last repair search chose (observer, kept), kept_layers

    def rows(self, runtimes: tuple[str, ...], precisions: tuple[str, ...], size: tuple[int, int]) -> list[EdgeRow]:
        out = []
        for runtime in (r for r in EDGE_RUNTIMES if r in runtimes):
            for precision in (p for p in ("fp32", "int8") if p in precisions):
                row = ReportRow(precision, _PROVIDER, runtime, quantizer=_QUANTIZER[runtime] if precision == "int8" else None)
                lost = None
                try:
                    path, lost = self._convert(runtime, precision, size, timed=True)
                except Exception as exc:  # noqa: BLE001 - the row says why; the report goes on
                    row.status, row.reason = "failed", f"conversion failed: {one_line(exc)}"
                else:
                    row.file, row.size_mb = str(path), model_megabytes(path)
                    self.files[f"{runtime}-{precision}"] = path
                out.append(EdgeRow(row, self._opener(runtime, row), Precision(precision),
                                   self._at_size(runtime, precision, row)))
                if precision == "int8" and lost is not None and self.budget is not None and lost > self.budget:
                    out += self._repaired(runtime, size, lost, row)
        return out

    def _repaired(self, runtime: str, size: tuple[int, int], lost: float, plain: ReportRow) -> list[EdgeRow]:
        """The repair search's row beside a plain int8 row over the budget."""
        row = ReportRow("int8", _PROVIDER, runtime, quantizer=_QUANTIZER[runtime], repaired=True)
        try:
            path, _ = self._convert(runtime, "int8", size, timed=True, search=True)
        except Exception as exc:  # noqa: BLE001 - the row says why; the report goes on
            row.status, row.reason = "failed", f"repair failed: {one_line(exc)}"
            return [EdgeRow(row, self._opener(runtime, row), Precision.int8, self._at_size(runtime, "int8", row))]
        options = self._chosen
        row.file, row.size_mb = str(path), model_megabytes(path)
        self.files[f"{runtime}-int8-repaired"] = path
        kept = options.get("kept_layers") or []
        how = f"observer {options['observer']}, " if "observer" in options else ""
        row.notes.append(f"repaired: plain int8 lost {lost:.2f} points against fp32; {how}"
                         f"{len(kept)} layer(s) kept in float" + (f" ({', '.join(kept)})" if kept else ""))
        replay = {k: v for k, v in options.items() if k != "kept_layers"}
        return [EdgeRow(row, self._opener(runtime, row), Precision.int8, self._at_size(runtime, "int8", row, replay))]

    def _opener(self, runtime: str, row: ReportRow) -> Callable[[], Runner]:
        def build() -> Runner:
            return self._open(runtime, Path(str(row.file)))

        return build

    def _at_size(self, runtime: str, precision: str, row: ReportRow,
                 chosen: dict[str, Any] | None = None) -> Callable[[tuple[int, int]], Runner]:
        """`chosen`: the repair search's options, applied as they are at the other size (not searched again)."""
        def at(size: tuple[int, int]) -> Runner:
            path, _ = self._convert(runtime, precision, size, timed=False, chosen=chosen)
            row.notes.append(f"mIoU measured with {path.name}, the same conversion static at {size[0]}x{size[1]} "
                             "(the labelled images' size)")
            return self._open(runtime, path)

        return at

    def _open(self, runtime: str, path: Path) -> Runner:
        backend = backend_named(runtime)
        start = time.perf_counter()
        session = backend.open(path, RuntimeSpec(backend.name, threads=self.threads), {})
        return backend.timing_runner(session, time.perf_counter() - start, name=f"{runtime} {path.name}")

    def _convert(self, runtime: str, precision: str, size: tuple[int, int], timed: bool,
                 chosen: dict[str, Any] | None = None, search: bool = False) -> tuple[Path, float | None]:
        """The file, and for int8 the argmax-agreement points it loses against its fp32 file (its verification).

        `chosen`: repair options to apply as they are; `search`: run the runtime's repair search."""
        from exporters.targets.from_torch import TorchTargetRequest, build_from_torch
        from segedge.parity.reference import torch_runner

        model = self._torch_model()
        assert self.card is not None  # _torch_model refused a missing card
        repaired = chosen is not None or search
        target = edge_file(self.out, self.stem, runtime, precision, None if timed else size, repaired=repaired)
        self.progress(f"converting to {runtime} {precision}{' (repaired)' if repaired else ''} at {size[0]}x{size[1]}")
        with calibration_folder(self.calib, size, self.calib_count) as (folder, _):
            request = TorchTargetRequest(target=runtime, output=target, input_size=size, precision=precision,
                                         static=True, calib=folder if precision == "int8" else None,
                                         calib_count=self.calib_count, threads=self.threads,
                                         overwrite=self.overwrite)
            result = build_from_torch(model, self.card, request, torch_runner(model),
                                      repair=self._search(runtime, folder) if search else _replay(chosen))
        verification = result.verification
        lost = 100.0 * (1.0 - verification.argmax_agreement) if precision == "int8" and verification is not None else None
        return target, lost

    def _search(self, runtime: str, calib: Path) -> Callable[..., dict[str, Any]]:
        """The runtime's repair search, keeping the options it chooses (in `_chosen`, with the kept layers' names)
        for the file at another size."""
        from exporters.calibration import calibration_images
        from segedge.quantize.adapters.litert_aeq import repairing_litert
        from segedge.quantize.adapters.pt2e import repairing_pt2e
        from segedge.quantize.convert import sample_source
        from segedge.quantize.request import QuantizeRequest

        assert self.card is not None and self.budget is not None
        request = QuantizeRequest(model=Path(self.card.name), precision=Precision.int8, calib=calib,
                                  calib_count=self.calib_count, data=self.data)
        samples = sample_source(request, self.card, calibration_images(calib, self.calib_count))
        search = (repairing_litert if runtime == "litert" else repairing_pt2e)(self.card, samples, self.budget,
                                                                              self.progress)

        def searched(*args: Any) -> dict[str, Any]:
            options = search(*args)
            self._chosen = {**{k: v for k, v in options.items() if k != "repair"},
                            "kept_layers": options["repair"]["kept_layers"]}
            return options

        return searched

    def _torch_model(self) -> Any:
        if self._model is None:
            if self.card is None or not self.card.source:
                raise CardError("the ONNX file has no segedge card naming its PyTorch model, and LiteRT and ExecuTorch "
                                "files are converted from PyTorch: report on the model itself (zoo name or file.py:fn)")
            from segedge.parity.reference import reference_model

            self._model, _ = reference_model(self.card, self.weights)
        return self._model


def _replay(chosen: dict[str, Any] | None) -> Callable[..., dict[str, Any]] | None:
    """A repair "search" that returns options already chosen (the repaired program at another size)."""
    if chosen is None:
        return None
    return lambda *_: dict(chosen)
