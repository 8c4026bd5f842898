"""`segedge report`: which runtime, precision and provider to ship — one table, measured in one run.

    export (fp32) -> quantize (fp16, int8) -> for every precision x provider x runtime:
        status (ok / failed: reason), file size, argmax agreement with PyTorch fp32, mIoU (--data),
        p50 / p90 latency, throughput, memory
    -> the best row: the fastest whose accuracy holds (mIoU within `budget` points of PyTorch
       fp32 when labels are given, else the argmax-agreement preset of its precision).

Every row that can run is timed in the same interleaved rounds, same input, same threads. A row
that cannot run (provider missing, quantizer failure, compiler failure) stays in the table with
its reason: the user learns what was not tried and why.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporters.int8_options import DEFAULT_CALIB_COUNT
from runtimes.model.onnx_info import model_megabytes
from runtimes.model.card import ModelCard
from runtimes.errors import CardError, UsageError
from runtimes.guards.fileio import ensure_writable, work_folder
from runtimes.measure.machine import machine_record, usable_cpus
from runtimes.measure.parity import PRESETS, Parity, ParityAccumulator, Tolerance, compare_outputs, judge, sample_input
from runtimes.imaging.postprocess import labels
from runtimes.model.precision import Precision
from runtimes.backends import RuntimeSpec, backend_named, backend_names
from runtimes.backends.onnxruntime_providers import Provider, resolve
from runtimes.backends.selection import Runtime, install_line, runtime_for
from runtimes.backends.onnxruntime_session import ModelSession, open_session
from runtimes.measure.timing import FailedRun, Row, Runner, one_line, time_runners
from segedge.bench.run import Peer, onnx_for
from segedge.data.demo import with_demo_data
from segedge.data.labelled import labelled_pairs
from segedge.report.accuracy import accuracy_size, calibration_folder, image_input, mean_iou
from segedge.report.clashes import check_report_outputs
from segedge.report.edge_rows import EDGE_RUNTIMES, EdgeRows
from segedge.report.rows import Report, ReportRow, Variant, best_per_target, choose_best, fill_losses
from segedge.sources.build import is_user_source
from segedge.report.repaired import repair_note, repaired_file
from segedge.report.samples import SampleBook, image_pool
from segedge.report.web_row import web_row

Progress = Callable[[str], None]
PRECISIONS = tuple(p.value for p in Precision)
# The rows a report can have, in bench's words (`--runtimes`): the runtimes an app ships, and PyTorch beside them.
RUNTIMES = (Runtime.onnxruntime.value, Runtime.openvino.value, Peer.torch.value, Peer.compile.value, *EDGE_RUNTIMES,
            Peer.web.value)
# The edge rows convert the model up to four more times each, the web row starts a browser: asked for by name.
DEFAULT_RUNTIMES = RUNTIMES[:4]


@dataclass(frozen=True)
class ReportRequest:
    target: str
    output: Path
    precisions: tuple[str, ...] = PRECISIONS
    providers: tuple[Provider, ...] = (Provider.cpu,)
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    calib: Path | None = None
    calib_count: int = DEFAULT_CALIB_COUNT
    data: Path | None = None
    data_limit: int | None = None
    input_size: tuple[int, int] | None = None
    # The threads every row gets and OpenVINO's precision hint; the runtimes and providers are the axes above.
    spec: RuntimeSpec = field(default_factory=RuntimeSpec)
    warmup: int = 3
    runs: int = 20
    weights: Path | None = None
    budget: float = 1.0  # mIoU points a row may lose against PyTorch fp32 and still be "best"
    card_overrides: dict[str, Any] = field(default_factory=dict)  # for files exported elsewhere
    overwrite: bool = False  # replace files in the folder that segedge did not write

    def __post_init__(self) -> None:
        for option, values in (("--precisions", self.precisions), ("--providers", self.providers), ("--runtimes", self.runtimes)):
            if not values:
                raise UsageError(f"{option}: name at least one")
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown:
            raise UsageError(f"--precisions: unknown {', '.join(unknown)}; choose from {', '.join(PRECISIONS)}")
        if self.spec.runtime is not None or self.spec.provider != Provider.cpu:
            raise UsageError("a report's runtimes and providers are its --runtimes and --providers")
        unknown = [r for r in self.runtimes if r not in RUNTIMES]
        if unknown:
            raise UsageError(f"--runtimes: unknown {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")


@dataclass
class _Candidate:
    """A row to measure: its key, the ONNX file it runs, and how to build its runner."""

    row: ReportRow
    build: Callable[[], Runner]
    precision: Precision
    runner: Runner | FailedRun | None = None
    at_size: Callable[[tuple[int, int]], Runner] | None = None  # a static file's runner at another size (mIoU)


def run_report(request: ReportRequest, progress: Progress = lambda message: None,
               samples: SampleBook | None = None) -> Report:
    """The report; with `samples`, each row's label maps of sample images are kept there too (for index.html)."""
    start = time.perf_counter()
    out = request.output
    check_report_outputs(request, report_name(request.target))  # before the folder is even made
    out.mkdir(parents=True, exist_ok=True)
    ensure_writable(out / "report.json")
    threads = request.spec.threads or usable_cpus()
    fp32 = _fp32_file(request, out, progress)
    card = open_session(fp32, "cpu", threads, overrides=request.card_overrides).card
    request = _with_demo_data(request, card)  # demo weights bring their data along
    size = request.input_size or card.input_size
    x = sample_input(card, 1, size, seed=0)
    files, calibration = _precision_files(request, fp32, card, size, progress)
    candidates = _candidates(request, files, card, x, threads)
    edge = EdgeRows(card, request.weights, out, fp32.stem.removesuffix("_fp32"), request.calib, request.calib_count,
                    threads, request.overwrite, progress, budget=None if _random_weights(request) else request.budget,
                    data=request.data)
    candidates += [_Candidate(e.row, e.build, e.precision, at_size=e.at_size)
                   for e in edge.rows(request.runtimes, request.precisions, size)]
    runners = []
    for c in candidates:
        progress(f"preparing {c.row.label}")
        runners.append(_build(c))
        c.runner = runners[-1]
    progress(f"timing {sum(isinstance(r, Runner) for r in runners)} rows: "
             f"{request.warmup} warm-up + {request.runs} interleaved runs")
    rows = time_runners(runners, lambda r: x, 1, request.warmup, request.runs,
                        gpu=any(p in (Provider.cuda, Provider.tensorrt) for p in request.providers))
    for c, timed in zip(candidates, rows):
        _fill_timing(c.row, timed)
    on_x = [] if Peer.web.value not in request.runtimes or "fp32" not in request.precisions else [
        web_row(fp32, card, x, out, request.runs, request.warmup, progress, threads=threads)]
    progress("measuring accuracy")
    agreement_on = _measure_accuracy(request, candidates, card, x, size, progress, samples if samples and samples.limit else None,
                                     on_x)
    table = [c.row for c in candidates] + [row for row, _ in on_x]
    fill_losses(table)
    best, why = choose_best(table, request.budget, random_weights=_random_weights(request))
    if best is not None and best.runtime in backend_names() and best.file:  # a row an app ships through the Predictor
        why += f"; ship it: {install_line(best.runtime)}, {predictor_call(best)}"
    return Report(
        model=request.target, input_size=size, threads=threads, rows=table,
        best=best.label if best else None, best_reason=why, calibration=calibration,
        data=str(request.data) if request.data else None, machine=machine_record(threads),
        files={**{v.name: str(f) for v, f in files.items() if isinstance(f, Path)},
               **{name: str(f) for name, f in edge.files.items()}},
        seconds=time.perf_counter() - start, weights=_weights_note(request, card), agreement_on=agreement_on,
        budget=request.budget, per_target=best_per_target(table, request.budget, _random_weights(request)),
    )


def predictor_call(row: ReportRow) -> str:
    """The line that runs `row`'s file in an app as the row was timed: only what differs from the defaults."""
    arguments = [json.dumps(row.file)]
    if runtime_for(str(row.file), None) != row.runtime:
        arguments.append(f'runtime="{row.runtime}"')
    provider = row.provider.removesuffix(" (auto)")
    if row.runtime == Runtime.onnxruntime and provider != Provider.cpu.value:
        arguments.append(f'providers="{provider}"')
    if row.openvino_hint is not None:
        arguments.append(f'openvino_hint="{row.openvino_hint}"')
    return f"Predictor({', '.join(arguments)})"


def _fp32_file(request: ReportRequest, out: Path, progress: Progress) -> Path:
    target = Path(request.target)
    if target.suffix == ".onnx" or target.exists():
        return target
    with work_folder("segedge-report-") as workdir:
        exported = onnx_for(request.target, Path(workdir), request.weights, request.input_size, progress)
        final = out / f"{report_name(request.target)}_fp32.onnx"
        exported.replace(final)
    return final


def _with_demo_data(request: ReportRequest, card: ModelCard | None) -> ReportRequest:
    """Calibrate on the demo data's train split and measure mIoU on its held-out split unless told otherwise."""
    calib, data = with_demo_data(card, request.calib, request.data)
    return dataclasses.replace(request, calib=calib, data=data)


def _random_weights(request: ReportRequest) -> bool:
    """A zoo model without --weights is randomly initialised (segedge downloads none). A user's
    function or an ONNX file may hold trained weights segedge cannot see, so they are judged."""
    return request.weights is None and not is_user_source(request.target) and not _is_file(request.target)


def _weights_note(request: ReportRequest, card: ModelCard | None) -> str:
    if card is not None and card.training:
        record = card.training
        return (f"demo: {record.get('recipe')}, trained by segedge on {record.get('dataset', {}).get('train')} shapes "
                f"images, held-out mIoU {record.get('held_out_miou')}")
    if request.weights is not None:
        return str(request.weights)
    if _random_weights(request):
        return "random (no --weights): accuracy cannot be judged"
    return f"as {request.target} holds them"


def _is_file(target: str) -> bool:
    return Path(target).suffix == ".onnx" or Path(target).exists()


def report_name(target: str) -> str:
    """'deeplabv3plus' -> itself, 'pkg/file.py:build' -> 'build', 'm.onnx' -> 'm'."""
    return target.rpartition(":")[2] if ":" in target else Path(target).stem


def _precision_files(request: ReportRequest, fp32: Path, card: ModelCard | None, size: tuple[int, int],
                     progress: Progress) -> tuple[dict[Variant, Path | str], str | None]:
    """Each variant's file (made by `segedge.quantize`, its cost in the card), or why it could not be made."""
    from segedge.quantize import QuantizeRequest, run_quantize

    files: dict[Variant, Path | str] = {}
    calibration = None
    jobs = [Variant(precision, "ort" if precision == "int8" else None) for precision in request.precisions]
    if "int8" in request.precisions and "openvino" in request.runtimes:
        jobs.append(Variant("int8", "nncf"))  # int8 made for the runtime that runs it
    for variant in jobs:
        precision, runtime = variant.precision, Runtime(variant.runtime)
        if precision == "fp32":
            files[variant] = fp32
            continue
        suffix = ".xml" if runtime is Runtime.openvino else ".onnx"
        target = request.output / f"{fp32.stem.removesuffix('_fp32')}_{precision}{suffix}"
        progress(f"quantizing to {precision}" + (" for OpenVINO (NNCF)" if runtime is Runtime.openvino else ""))
        try:
            with calibration_folder(request.calib, size, request.calib_count) as (folder, calibration):
                quantize = QuantizeRequest(model=fp32, precision=Precision(precision), output=target, calib=folder,
                                           calib_count=request.calib_count, data=request.data,
                                           data_limit=request.data_limit, card_overrides=request.card_overrides,
                                           runtime=runtime, overwrite=request.overwrite)
                quantized = run_quantize(quantize, progress)
                files[variant] = quantized.path
                if precision == "int8" and not _random_weights(request):  # over budget: the repair's file gets a row
                    fixed = repaired_file(quantized, runtime, fp32, card or quantized.card, folder, request.calib_count,
                                          request.data, request.data_limit, request.budget, request.card_overrides,
                                          progress)
                    if fixed is not None:
                        files[dataclasses.replace(variant, repaired=True)] = fixed
                calibration = "; ".join(dict.fromkeys((calibration, *quantized.warnings)))  # fewer images than asked
        except Exception as exc:  # the row says why; the other precisions go on
            files[variant] = f"quantization failed: {one_line(exc)}"
    return files, calibration


def _candidates(request: ReportRequest, files: dict[Variant, Path | str], card: ModelCard | None,
                x: np.ndarray, threads: int) -> list[_Candidate]:
    out = []
    for variant, file in files.items():
        precision = variant.precision
        precision_enum = Precision(precision)
        if precision == "fp32" and card is not None and card.precision is not Precision.fp32:  # a file made elsewhere,
            precision, precision_enum = card.precision_label, card.precision  # fp16 inside: labelled, judged as it is
        shipped = []
        if "onnxruntime" in request.runtimes and variant.runtime == Runtime.onnxruntime:  # it cannot read an IR
            for provider in request.providers:
                row = ReportRow(precision, _provider_label(provider), "onnxruntime")
                shipped.append(_Candidate(row, _ort_factory(file, provider, threads, request.spec.hint,
                                                            request.card_overrides), precision_enum))
        if "openvino" in request.runtimes:
            for hint, label in _openvino_variants(variant, request.spec.hint):
                row = ReportRow(precision, label, "openvino", openvino_hint=hint)
                shipped.append(_Candidate(row, _openvino_factory(file, threads, hint, request.card_overrides),
                                          precision_enum))
        for c in shipped:
            _attach_file(c.row, file)
            c.row.quantizer, c.row.repaired = variant.quantizer, variant.repaired
            if variant.repaired:
                c.row.notes.extend(filter(None, [repair_note(file)]))
        out += shipped
        for kind in ("torch", "compile"):
            if precision != "fp32" or kind not in request.runtimes:
                continue
            for device in _torch_devices(request.providers):
                row = ReportRow(precision, device, Peer(kind).row_runtime)
                out.append(_Candidate(row, _torch_factory(Peer(kind), card, request.weights, device, threads, x), precision_enum))
    return out


def _openvino_variants(variant: Variant, hint: str | None) -> list[tuple[str | None, str]]:
    """(precision hint, provider label) of each OpenVINO row of a file: an fp32 file in f32 and in bf16
    (what OpenVINO picks by itself on CPUs with AMX or AVX512-BF16) unless --openvino-hint names one;
    int8 files say whose quantizer made them."""
    if variant.quantizer == "nncf":
        return [(hint, "CPU, NNCF IR")]
    if variant.quantizer == "ort":
        return [(hint, "CPU, ORT QDQ")]
    if variant.precision == "fp32" and hint is None:
        return [("f32", "CPU f32"), ("bf16", "CPU bf16")]
    return [(hint, f"CPU {hint or 'auto'}")]


def _attach_file(row: ReportRow, file: Path | str) -> None:
    if isinstance(file, str):  # the reason the file could not be made
        row.status, row.reason = "failed", file
        return
    row.file, row.size_mb = str(file), model_megabytes(file)


def _provider_label(provider: Provider) -> str:
    """'cpu'; for `auto`, what it chose: 'openvino (auto)'."""
    return f"{resolve(provider).value} (auto)" if provider is Provider.auto else provider.value


def _torch_devices(providers: tuple[Provider, ...]) -> list[str]:
    """PyTorch on the CPU always; on CUDA too when a GPU provider is in the table."""
    on_gpu = any(resolve(p) in (Provider.cuda, Provider.tensorrt) for p in providers)
    return ["cpu", "cuda"] if on_gpu else ["cpu"]


def _ort_factory(file: Path | str, provider: Provider, threads: int, hint: str | None,
                 overrides: dict[str, Any]) -> Callable[[], Runner]:
    """The row on ONNX Runtime's `provider`; `hint` reaches its OpenVINO provider only."""
    def build() -> Runner:
        backend = backend_named(Runtime.onnxruntime)
        spec = RuntimeSpec(backend.name, provider, threads=threads, spinning=False,  # the rounds are shared
                           hint=hint if resolve(provider) is Provider.openvino else None)
        start = time.perf_counter()
        session = backend.open(Path(file), spec, overrides)
        runner = backend.timing_runner(session, time.perf_counter() - start, name=f"onnxruntime {provider.value}")
        placement = session.placement() if isinstance(session, ModelSession) else None
        if placement is not None:
            runner.notes.append(f"node placement: {placement.summary()}")
        return runner

    return build


def _openvino_factory(file: Path | str, threads: int, hint: str | None, overrides: dict[str, Any]) -> Callable[[], Runner]:
    """The row as an app runs it: `Predictor(file, runtime="openvino")`'s adapter (compiled per shape)."""
    def build() -> Runner:
        backend = backend_named(Runtime.openvino)
        start = time.perf_counter()
        session = backend.open(Path(file), RuntimeSpec(backend.name, threads=threads, hint=hint), overrides)
        return backend.timing_runner(session, time.perf_counter() - start)

    return build


def _torch_factory(peer: Peer, card: ModelCard | None, weights: Path | None, device: str, threads: int,
                   x: np.ndarray) -> Callable[[], Runner]:
    def build() -> Runner:
        if card is None or not card.source:
            raise CardError("the ONNX file has no segedge card, so there is no PyTorch model to rebuild")
        from segedge.bench.run import torch_peer

        return torch_peer(peer, card, weights, device, threads, x, exclude_copies=False)

    return build


def _build(candidate: _Candidate) -> Runner | FailedRun:
    row = candidate.row
    if row.status == "failed":
        return FailedRun(row.label, row.runtime, row.provider, row.reason)
    try:
        return candidate.build()
    except Exception as exc:  # a runtime that cannot start here is a row with its reason
        return FailedRun(row.label, row.runtime, row.provider, one_line(exc))


def _fill_timing(row: ReportRow, timed: Row) -> None:
    if isinstance(timed, FailedRun):
        row.status, row.reason = "failed", row.reason or timed.reason
        return
    row.p50_ms, row.p90_ms, row.mean_ms = timed.p50_ms, timed.p90_ms, timed.mean_ms
    row.throughput, row.memory_mb, row.gpu_memory_mb = timed.throughput, timed.memory_mb, timed.gpu_memory_mb
    row.peak_rss_mb = timed.peak_rss_mb
    row.setup_s, row.first_run_ms, row.compile_s = timed.setup_s, timed.first_run_ms, timed.compile_s
    row.notes.extend(timed.notes)


def _measure_accuracy(request: ReportRequest, candidates: list[_Candidate], card: ModelCard | None, x: np.ndarray,
                      size: tuple[int, int], progress: Progress, samples: SampleBook | None = None,
                      on_x: Sequence[tuple[ReportRow, np.ndarray | None]] = ()) -> str:
    """Each row's agreement with PyTorch fp32 and mIoU; returns what the agreement was measured on.

    `on_x`: fp32 rows that ran the generated input only (the browser's), with their output: agreement, no mIoU."""
    live = [(c, c.runner) for c in candidates if c.row.status == "ok" and isinstance(c.runner, Runner)]
    reference = next((r for c, r in live if c.row.runtime == "torch" and c.row.provider == "cpu"), None)
    reference_out = _torch_reference(card, request.weights, x) if reference is None else _output(reference, x)
    for row, output in on_x:
        if output is not None and reference_out is not None and card is not None:
            parity = compare_outputs(reference_out, output, card.output_kind, card.threshold, num_classes=card.num_classes)
            row.agreement, row.parity_ok = parity.argmax_agreement, not judge(parity, PRESETS[Precision.fp32])
            row.notes.append("agreement on the generated input; no mIoU: the page runs that input only")
    pairs = labelled_pairs(request.data, request.data_limit) if request.data else None
    measured = accuracy_size(pairs, card, size) if pairs is not None and card is not None else size
    if samples is not None and card is not None and live:
        # The samples' reference runs first: every other row's maps are compared with its maps as they come.
        first = reference if reference is not None else live[0][1]
        live.sort(key=lambda item: item[1] is not first)
        if pairs is not None:
            samples.start(pairs, card.classes, card.colors(), f"{len(pairs)} labelled images of {request.data}",
                          live[0][0].row.label)
    elif pairs is not None and reference is not None:
        live.sort(key=lambda item: item[1] is not reference)  # its outputs are what the others are compared with
    on_images = OnImages(card, measured, len(pairs)) if pairs is not None and card is not None and reference is not None else None
    for c, runner in live:
        if reference_out is not None and card is not None:
            parity = compare_outputs(reference_out, _output(runner, x), card.output_kind, card.threshold,
                                     num_classes=card.num_classes)
            c.row.agreement = parity.argmax_agreement
            c.row.parity_ok = not judge(parity, _tolerance_for(c))
        if pairs is not None and card is not None:
            progress(f"mIoU of {c.row.label} on {len(pairs)} images")
            at_size = _runner_at(c, runner, reference, measured, size, request)
            if at_size is not None:
                run = _sampled_run(samples, c.row.label, at_size, card)
                if on_images is not None:
                    run = on_images.watch(run, is_reference=runner is reference)
                c.row.miou = mean_iou(pairs, run, card, measured)
                on_labelled = on_images.result() if on_images is not None and runner is not reference else None
                if on_labelled is not None:
                    # Agreement with PyTorch fp32 on the labelled images replaces the generated input's:
                    # a trained model's label maps on images like its data are what an app ships.
                    c.row.agreement = on_labelled.argmax_agreement
                    c.row.parity_ok = not judge(on_labelled, _tolerance_for(c))
    if samples is not None and card is not None and live and pairs is None:
        _sample_without_labels(samples, live, request.calib, card, size, progress)
    if on_images is not None and on_images.fits and pairs:
        return f"the {len(pairs)} labelled images mIoU is measured on"
    return "a generated image"


class OnImages:
    """The reference row's outputs on the labelled images, kept to compare every other row's with.

    Kept only while they fit in `BUDGET_BYTES` (100 demo images of 96 x 96 at 6 classes: 22 MB);
    past that, agreement stays the generated input's.
    """

    BUDGET_BYTES = 256 * 2**20

    def __init__(self, card: ModelCard, size: tuple[int, int], images: int) -> None:
        self.card = card
        self.fits = images * max(1, card.num_classes or 1) * size[0] * size[1] * 4 <= self.BUDGET_BYTES
        self.reference: list[np.ndarray] = []
        self.accumulator: ParityAccumulator | None = None

    def watch(self, run: Callable[[np.ndarray], np.ndarray], is_reference: bool) -> Callable[[np.ndarray], np.ndarray]:
        """`run`, keeping (reference) or comparing (any other row) each image's output in order."""
        if not self.fits:
            return run
        if is_reference:
            self.reference = []
        accumulator = ParityAccumulator(self.card.num_classes, self.card.output_kind, self.card.threshold)
        self.accumulator = None if is_reference else accumulator
        seen = itertools.count()

        def watched(x: np.ndarray) -> np.ndarray:
            out = run(x)
            if is_reference:
                self.reference.append(np.asarray(out, np.float32).copy())
            elif (i := next(seen)) < len(self.reference) and self.reference[i].shape == np.shape(out):
                accumulator.add(self.reference[i], np.asarray(out, np.float32))
            return out

        return watched

    def result(self) -> Parity | None:
        """The last watched row against the reference, or None when nothing could be compared."""
        if self.accumulator is None or self.accumulator.images == 0:
            return None
        return self.accumulator.result(f"{self.accumulator.images} labelled images")


def _runner_at(candidate: _Candidate, runner: Runner, eager: Runner | None, measured: tuple[int, int],
               size: tuple[int, int], request: ReportRequest) -> Runner | None:
    """The row's runner for mIoU at `measured`: itself at the timed size or when it takes any size
    (ONNX Runtime, OpenVINO's adapter compiling each new shape, eager PyTorch); for torch.compile, eager
    PyTorch (the same fp32 network; compiling again would cost another compile), said in its notes."""
    row = candidate.row
    if measured == size or row.runtime in ("onnxruntime", "openvino", "torch"):
        return runner
    if candidate.at_size is not None:
        try:
            return candidate.at_size(measured)
        except Exception as exc:  # noqa: BLE001 - no mIoU for the row, and its notes say why
            row.notes.append(f"no mIoU: a file at {measured[0]}x{measured[1]} could not be made: {one_line(exc)}")
            return None
    if row.runtime == "torch.compile" and eager is not None:
        row.notes.append(f"mIoU measured with PyTorch eager at {measured[0]}x{measured[1]} (the same fp32 network)")
        return eager
    return None


def _sampled_run(samples: SampleBook | None, label: str, runner: Runner, card: ModelCard) -> Callable[[np.ndarray], np.ndarray]:
    """The row's run, handing each label map to `samples` as it is made (the same run mIoU is measured with)."""
    run = functools.partial(_output, runner)
    if samples is None:
        return run
    return samples.observed(label, lambda out: labels(out[0], card.output_kind, card.threshold), run)


def _sample_without_labels(samples: SampleBook, live: list[tuple[_Candidate, Runner]], calib: Path | None,
                           card: ModelCard, size: tuple[int, int], progress: Progress) -> None:
    """Without --data no row has run on images yet: each runs on a few calibration or generated images."""
    with image_pool(calib, 2 * samples.limit, size) as (pool, source):
        samples.start(pool, card.classes, card.colors(), source, live[0][0].row.label)
        for c, runner in live:
            progress(f"{c.row.label} on {len(pool)} sample images")
            run = _sampled_run(samples, c.row.label, runner, card)
            for image, _ in pool:
                run(image_input(image, card, size))


def _tolerance_for(candidate: _Candidate) -> Tolerance:
    """The preset of the row's precision; an fp32 file that its runtime ran in bf16 or f16 (OpenVINO's
    inference precision, its runner's `inference_precision` tag) is judged like fp16: agreement, not logits."""
    precision = candidate.precision
    runner = candidate.runner
    ran_at = runner.tags.get("inference_precision") if isinstance(runner, Runner) else None
    if precision is Precision.fp32 and ran_at in ("bf16", "f16"):
        precision = Precision.fp16
    return PRESETS[precision]


def _torch_reference(card: ModelCard | None, weights: Path | None, x: np.ndarray) -> np.ndarray | None:
    """PyTorch fp32 logits when no torch row was timed; None without a PyTorch source or without torch."""
    if card is None or not card.source:
        return None
    try:
        import torch
    except ImportError:
        return None
    from segedge.parity.reference import reference_model

    model, _ = reference_model(card, weights)
    with torch.no_grad():
        return model(torch.from_numpy(x)).float().numpy()


def _output(runner: Runner, x: np.ndarray) -> np.ndarray:
    return np.array(runner.run(runner.prepare(x)), dtype=np.float32)
