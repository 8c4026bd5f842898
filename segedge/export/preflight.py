"""Preflight: what in a model is known to break or drift in ONNX, found before exporting it.

`preflight(model, sample, opset)` walks the module tree and runs one forward on the sample
under a torch function mode that records each resize and adaptive pool with the module it was
called from. With `graph=True` it also exports the model with `torch.export` and lists the ops
the ONNX exporter has no translation for at `opset` (this uses the exporter's private registry;
where a torch release moves it, the report says so instead).

What is flagged, and why (each measured with torch 2.13 and ONNX Runtime 1.32):

- adaptive average/max pooling to sizes other than 1: ONNX has no such op. For the average,
  the torch.export exporter fixes the windows at the export size: an AveragePool where the map
  divides evenly (silently wrong values at other sizes, e.g. 1.2% of the logits' range), gathers
  otherwise (a run-time error at other sizes); the TorchScript exporter refuses. Both refuse
  the max. `rewrite(model)` swaps the modules for exportable ones.
- resize by `scale_factor`: the output size is floor(H * scale), which need not match the map it
  is combined with at sizes that are not multiples of the stride, and non-integer scales drift
  (about 1e-5 of the values at 0.37 in ONNX Runtime). Pass `size=` instead.
- `align_corners=True`: ONNX Runtime matches it; listed because other runtimes implement that
  Resize mode less uniformly than the default half-pixel one.
- `antialias=True` below opset 18: Resize has no antialias attribute before opset 18.

Transformer ops, one finding per kind with its count and first module (info: they export, and
these are what the precision steps do with them):

- LayerNorm, Softmax, GELU and MatMuls of two activations (attention's Q K^T and softmax(.) V):
  segedge's int8 keeps them in float (`exporters.int8_float`; NNCF as its TRANSFORMER type), and
  fp16 runs them in float16, where a LayerNorm's mean of squares and a Softmax's logits have the
  least headroom: `quantize` measures what each costs on images.
- `scaled_dot_product_attention`: decomposed into MatMul / Softmax below opset 23.

With `graph=True` the model is also traced as the TorchScript exporter traces it: every place
where a tensor becomes a Python number (`int(x.shape[-1])` used for a pad, a window count, a
mask) is a constant in that graph, right at the export size only. That is how Swin exports break
at another size (window padding and the shifted-window mask baked in); such a model needs the
torch.export exporter, or the shape arithmetic done on tensors.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from exporters.torch_to_onnx import DEFAULT_OPSET
from segedge.models.adaptive_pool import ExportableAdaptiveAvgPool2d, ExportableAdaptiveMaxPool2d

ROOT = "(model)"
_SWAPS: dict[type[nn.Module], type[nn.Module]] = {
    nn.AdaptiveAvgPool2d: ExportableAdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d: ExportableAdaptiveMaxPool2d,
}
_FUNCTIONAL_POOLS = {
    F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.adaptive_max_pool2d_with_indices
}
_INTERPOLATE_PARAMS = inspect.signature(F.interpolate)
# Transformer calls: what each is, and what the precision steps do with it.
_LAYER_NORM = {F.layer_norm}
_SOFTMAX = {F.softmax, torch.softmax, Tensor.softmax}
_GELU = {F.gelu}
_MATMUL = {torch.matmul, Tensor.matmul, Tensor.__matmul__, torch.bmm, Tensor.bmm}
_ATTENTION = {F.scaled_dot_product_attention}
_TRANSFORMER_DETAIL = {
    "layer-norm": "LayerNorm exports as LayerNormalization; int8 keeps it in float, fp16 runs its mean of squares in float16",
    "softmax": "Softmax: int8 keeps it in float; in fp16 its logits have the least headroom",
    "gelu": "GELU exports as Erf (below opset 20) or Gelu; int8 keeps it in float",
    "attention-matmul": "MatMul of two activations (attention): ONNX Runtime int8 keeps it in float (one scale per "
                        "operand would clip one of them); NNCF's TRANSFORMER type quantizes it for OpenVINO",
    "sdpa": "scaled_dot_product_attention: decomposed into MatMul / Softmax below opset 23",
}


class Severity(str, Enum):
    error = "error"  # fails to export, or exports wrong at other input sizes
    warning = "warning"  # exports, but may drift from PyTorch
    info = "info"  # exports and matches in ONNX Runtime; worth knowing for other runtimes


@dataclass(frozen=True)
class Finding:
    where: str  # the module's dotted path, or ROOT
    issue: str
    severity: Severity
    detail: str
    fixed_by_rewrite: bool = False

    def line(self) -> str:
        fix = " [rewrite() fixes it]" if self.fixed_by_rewrite else ""
        return f"{self.severity.value:<7} {self.where}: {self.detail}{fix}"


@dataclass(frozen=True)
class PreflightReport:
    opset: int
    findings: tuple[Finding, ...] = ()
    graph_checked: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No finding that breaks the export or its parity at other sizes."""
        return not any(f.severity is Severity.error for f in self.findings)

    def issues(self, issue: str) -> list[Finding]:
        return [f for f in self.findings if f.issue == issue]

    def lines(self) -> list[str]:
        return [f.line() for f in self.findings] + list(self.notes)


def preflight(
    model: nn.Module, sample: Tensor, opset: int = DEFAULT_OPSET, *, graph: bool = False
) -> PreflightReport:
    """Report what in `model` breaks or drifts in ONNX at `opset`; one forward on `sample`."""
    findings = list(_module_findings(model))
    was_training = model.training
    model.eval()
    try:
        findings += _call_findings(model, sample, opset)
        notes: tuple[str, ...] = ()
        if graph:
            graph_findings, notes = _graph_findings(model, sample, opset)
            findings += graph_findings + _traced_constants(model, sample)
    finally:
        model.train(was_training)
    return PreflightReport(opset, tuple(_unique(findings)), graph_checked=graph, notes=notes)


def rewrite(model: nn.Module) -> list[str]:
    """Swap adaptive pools with output sizes other than 1 for exportable ones, in place.

    Returns one line per swapped module, e.g.
    "head.ppm.stages.2.0: AdaptiveAvgPool2d(3) -> ExportableAdaptiveAvgPool2d(3)". A module
    shared under several names is swapped under each, for one shared replacement.
    """
    replacements: dict[int, nn.Module] = {}
    changes = []
    for name, module in list(model.named_modules(remove_duplicate=False)):
        if not name or type(module) not in _SWAPS or _is_global(module.output_size):
            continue
        if id(module) not in replacements:
            replacements[id(module)] = _SWAPS[type(module)](module.output_size)
        new = replacements[id(module)]
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
        size = _size_text(module.output_size)
        changes.append(f"{name}: {type(module).__name__}({size}) -> {type(new).__name__}({size})")
    return changes


def _module_findings(model: nn.Module) -> Iterator[Finding]:
    for name, module in model.named_modules():
        if type(module) in _SWAPS and not _is_global(module.output_size):
            what = type(module).__name__
            yield _pool_finding(name or ROOT, what, module.output_size, fixable=True)


def _pool_finding(where: str, what: str, output_size: object, fixable: bool) -> Finding:
    if "max" in what.lower():
        consequence = "both exporters refuse it"
    else:
        consequence = (
            "the torch.export exporter fixes the windows at the export size (wrong values or a "
            "run-time error at other sizes), the TorchScript exporter refuses it"
        )
    detail = f"{what}({_size_text(output_size)}) has no ONNX op: {consequence}"
    return Finding(where, "adaptive-pool", Severity.error, detail, fixed_by_rewrite=fixable)


class _CallRecorder(TorchFunctionMode):
    """Records resizes and functional adaptive pools, with the module that called them."""

    def __init__(self, opset: int) -> None:
        super().__init__()
        self.opset = opset
        self.stack: list[tuple[str, nn.Module]] = []
        self.findings: list[Finding] = []
        self.transformer_calls: dict[str, list[str]] = defaultdict(list)  # kind -> the module of each call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        where, caller = self.stack[-1] if self.stack else (ROOT, None)
        if func is F.interpolate:
            call = _INTERPOLATE_PARAMS.bind(*args, **kwargs).arguments
            self.findings += _resize_findings(where, call, self.opset)
        elif func in _FUNCTIONAL_POOLS and type(caller) not in _SWAPS:  # the walk found modules
            size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
            if not _is_global(size):
                what = f"F.{func.__name__}"
                self.findings.append(_pool_finding(where, what, size, fixable=False))
        elif (kind := _transformer_kind(func, args)) is not None:
            self.transformer_calls[kind].append(where)
        return func(*args, **kwargs)

    def transformer_findings(self) -> list[Finding]:
        return [Finding(wheres[0], kind, Severity.info, f"{_TRANSFORMER_DETAIL[kind]} ({len(wheres)} calls)")
                for kind, wheres in self.transformer_calls.items()]


def _transformer_kind(func: object, args: tuple) -> str | None:
    if func in _LAYER_NORM:
        return "layer-norm"
    if func in _SOFTMAX:
        return "softmax"
    if func in _GELU:
        return "gelu"
    if func in _ATTENTION:
        return "sdpa"
    if func in _MATMUL and len(args) >= 2 and _batched_alike(*args[:2]):
        return "attention-matmul"
    return None


def _batched_alike(a: object, b: object) -> bool:
    """Two activations multiplied batch by batch (attention's (..., n, d) @ (..., d, m)); a weight or a
    matrix built from the shape (an exportable pool's bins) has no batch dimensions of its own."""
    return (isinstance(a, Tensor) and isinstance(b, Tensor) and not isinstance(b, nn.Parameter)
            and a.dim() >= 3 and b.dim() == a.dim() and a.shape[:-2] == b.shape[:-2])


def _call_findings(model: nn.Module, sample: Tensor, opset: int) -> list[Finding]:
    recorder = _CallRecorder(opset)

    def enter(module: nn.Module, _inputs: object) -> None:
        recorder.stack.append((names[id(module)], module))

    def leave(_module: nn.Module, _inputs: object, _output: object) -> None:
        recorder.stack.pop()

    names = {id(m): name or ROOT for name, m in model.named_modules()}
    handles = [m.register_forward_pre_hook(enter) for m in model.modules()]
    handles += [m.register_forward_hook(leave) for m in model.modules()]
    try:
        with torch.no_grad(), recorder:
            model(sample)
    finally:
        for handle in handles:
            handle.remove()
    return recorder.findings + recorder.transformer_findings()


def _resize_findings(where: str, call: dict, opset: int) -> list[Finding]:
    found = []
    if call.get("scale_factor") is not None:
        found.append(Finding(
            where, "resize-scale-factor", Severity.warning,
            f"interpolate(scale_factor={call['scale_factor']}): floor(H * scale) need not match "
            "the map it meets at sizes off the stride, and non-integer scales drift; pass size=",
        ))
    if call.get("align_corners"):
        found.append(Finding(
            where, "resize-align-corners", Severity.info,
            "interpolate(align_corners=True): ONNX Runtime matches; other runtimes implement "
            "this Resize mode less uniformly than half-pixel",
        ))
    if call.get("antialias") and opset < 18:
        found.append(Finding(
            where, "resize-antialias", Severity.error,
            f"interpolate(antialias=True): Resize has no antialias before opset 18 (opset {opset})",
        ))
    return found


def _graph_findings(
    model: nn.Module, sample: Tensor, opset: int
) -> tuple[list[Finding], tuple[str, ...]]:
    try:  # private: the exporter's own preparation and table of the ATen ops it translates
        from torch.onnx._internal.exporter import _core, _registration
    except ImportError:
        return [], ("info    graph check unavailable: this torch has no ONNX exporter registry",)
    registry_logger = logging.getLogger(_registration.__name__)
    level = registry_logger.level
    registry_logger.setLevel(logging.ERROR)  # it warns about every torchvision op it skips
    try:
        registry = _registration.ONNXRegistry.from_torchlib(opset_version=opset)
        with torch.no_grad():
            program = torch.export.export(model, (sample,))
            program = _core._prepare_exported_program_for_export(program, registry=registry)
    except Exception as exc:  # torch raises many types here; the message is what matters
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        capture = Finding(
            ROOT, "graph-capture", Severity.warning,
            f"torch.export + the exporter's decompositions failed ({message}); "
            "the torch.export-based ONNX export will likely fail too",
        )
        return [capture], ()
    finally:
        registry_logger.setLevel(level)
    found = []
    for node in program.graph.nodes:
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        if not registry.is_registered(node.target):
            stack = list(node.meta.get("nn_module_stack", {}).values())
            where = stack[-1][0] if stack and stack[-1][0] else ROOT
            found.append(Finding(
                where, "no-onnx-op", Severity.error,
                f"{node.target.name()} has no ONNX translation at opset {opset}",
            ))
    return found, ()


def _traced_constants(model: nn.Module, sample: Tensor) -> list[Finding]:
    """Where tracing turns a tensor into a Python value (the TorchScript exporter's graph then holds
    it as a constant): one finding per line of code, from the tracer's own warnings."""
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always", torch.jit.TracerWarning)
        try:
            torch.jit.trace(model, (sample,), check_trace=False, strict=False)
        except Exception:  # noqa: BLE001 - a model tracing cannot take is the graph check's finding, not this one's
            return []
    found: dict[str, Finding] = {}
    for warning in caught:
        if issubclass(warning.category, torch.jit.TracerWarning):
            where = f"{warning.filename}:{warning.lineno}"
            first = str(warning.message).strip().splitlines()[0]
            found.setdefault(where, Finding(
                where, "traced-constant", Severity.warning,
                f"{first} -- the TorchScript export holds this value as a constant, right at the export size "
                "only; use the torch.export exporter or keep the arithmetic on tensors",
            ))
    return list(found.values())


def _is_global(output_size: object) -> bool:
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
    return all(s == 1 for s in sizes)


def _size_text(output_size: object) -> str:
    if isinstance(output_size, (tuple, list)) and len(set(output_size)) == 1:
        output_size = output_size[0]
    return str(tuple(output_size) if isinstance(output_size, list) else output_size)


def _unique(findings: list[Finding]) -> Iterator[Finding]:
    seen = set()
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            yield finding
