"""Operator checks: which nodes of a graph a target's runtime cannot run, and where they would go.

Every list comes from a library where one ships it:
- ONNX Runtime's kernel registries (`onnxruntime_pybind11_state.get_all_opkernel_def()`, what ORT's
  own tools/python/gen_opkernel_doc.py reads) for its CPU and CUDA providers;
- ORT's `tools/mobile_helpers/*_supported_ops.md`, the lists its usability checker
  (`check_onnx_model_mobile_usability`) reads, for NNAPI and CoreML;
- `qnn_ops.py` and `tensorrt_ops.py` (sourced copies: no installed library tells) for QNN and TensorRT;
- OpenVINO's ONNX frontend and `core.query_model` (`openvino_ir.check_openvino`).

Partitions are ORT's own estimate (`usability_checker.check_partitioning`). That checker, asked
to require fixed input sizes, counts an absent optional input ("" in Resize's roi/scales slots)
as a dynamic one and so flags every Resize of a static model; here each node's verdict (its op
in the list, its real inputs fixed-size, their rank) is made first and ORT's partitioner is given
the verdicts, without its shape rule.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import onnx
from onnxruntime.tools.mobile_helpers import usability_checker
from onnxruntime.tools.onnx_model_utils import is_fixed_size_tensor, optimize_model

from runtimes.backends.messages import runtime_reason
from runtimes.errors import UsageError
from runtimes.guards.fileio import work_folder

from . import qnn_ops, tensorrt_ops
from .node_names import node_label, op_label

from .quiet import quiet
from .result import CheckReport, UnsupportedNode
from .table import Check

CPU_EP, CUDA_EP = "CPUExecutionProvider", "CUDAExecutionProvider"


def run_check(check: Check, model_path: Path) -> CheckReport:
    """Run `check` on the ONNX file `model_path` (the graph the target's writer starts from)."""
    if check is Check.coreml_mil_ops:  # a check of the written package, not of an ONNX graph
        raise UsageError("the coreml_mil_ops check reads a .mlpackage: exporters.targets.mlpackage_spec.check_mil_ops")
    if check is Check.openvino_devices:
        from .openvino_ir import check_openvino

        return check_openvino(model_path)
    if check in (Check.nnapi_ops, Check.coreml_mlprogram_ops, Check.qnn_htp_ops):
        return ort_ep_list(model_path, check)
    model = onnx.load(os.fspath(model_path))
    if check is Check.tensorrt_ops:
        return op_list(model, check, "TensorRT's ONNX parser", tensorrt_ops.SOURCE, _tensorrt_verdict,
                       fallback="CUDA/CPU under ORT's TensorRT EP",
                       caveats=_caveats(model, tensorrt_ops.RESTRICTIONS))
    return ort_kernels(model, CPU_EP if check is Check.ort_cpu_kernels else CUDA_EP, check)


# -- ONNX Runtime's kernel registries -------------------------------------------------------------
def ort_kernels(model: onnx.ModelProto, provider: str, check: Check) -> CheckReport:
    """Nodes for which this onnxruntime build has no `provider` kernel at the node's opset.

    Types are not matched (a kernel for float may exist where the node is int64): running the
    artefact, which the build does for every target, is what proves those.
    """
    registry = kernel_registry(provider)
    runtime = f"ONNX Runtime {provider}"
    if not registry:
        return CheckReport(check.value, runtime, "onnxruntime kernel registry", ran=False,
                           nodes=len(model.graph.node), supported=0,
                           note=f"this onnxruntime build has no {provider} kernels (install onnxruntime-gpu "
                                "on the GPU machine and run the check there)")
    opsets = {imp.domain or "": int(imp.version) for imp in model.opset_import}
    rows = []
    for node in model.graph.node:
        reason = _kernel_gap(node, opsets, registry, provider)
        if reason:
            rows.append(UnsupportedNode(op_label(node), node_label(node), reason, check.value))
    # ORT puts what CUDA cannot run on its CPU provider; a node the CPU provider cannot run fails the model.
    return CheckReport(check.value, runtime, "onnxruntime kernel registry (get_all_opkernel_def)", ran=True,
                       nodes=len(model.graph.node), supported=len(model.graph.node) - len(rows),
                       unsupported=tuple(rows), fallback=CPU_EP if provider != CPU_EP else None)


def kernel_registry(provider: str) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(domain, op type) -> the opset ranges of this build's kernels for `provider`."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as rtpy

        kernels = rtpy.get_all_opkernel_def()
    except (ImportError, AttributeError):  # a build without the schema API
        return {}
    table: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for kernel in kernels:
        if kernel.provider == provider:
            table.setdefault((kernel.domain, kernel.op_name), []).append(tuple(kernel.version_range))
    return table


# Operators ONNX Runtime has no kernel for because it never runs them: it turns each Constant into an
# initializer when it loads a graph (and the ORT format stores them so).
FOLDED_AT_LOAD = ("Constant",)


def _kernel_gap(node: onnx.NodeProto, opsets: dict[str, int], registry, provider: str) -> str:
    domain = "" if node.domain == "ai.onnx" else node.domain
    if domain == "" and node.op_type in FOLDED_AT_LOAD:
        return ""
    schema = _schema(node, domain, opsets)
    version = int(schema.since_version) if schema is not None else opsets.get(domain, 1)
    ranges = registry.get((domain, node.op_type), [])
    if any(low <= version <= high for low, high in ranges):
        return ""
    if domain == "" and node.op_type == "Constant":  # ORT turns Constant nodes into initializers when it loads a graph
        return ""
    # ORT inlines an operator defined as an ONNX function (Mish, ...) when it has no kernel for it.
    # (getattr: onnx's type stubs lack these two properties of OpSchema.)
    if schema is not None and (getattr(schema, "has_function", False)
                               or getattr(schema, "has_context_dependent_function", False)):
        return ""
    if not ranges:
        return f"no {provider} kernel for this operator"
    covered = ", ".join(f"{low}-{high if high < 2**30 else 'latest'}" for low, high in sorted(ranges))
    return f"no {provider} kernel for opset version {version} (kernels cover {covered})"


def _schema(node: onnx.NodeProto, domain: str, opsets: dict[str, int]) -> onnx.defs.OpSchema | None:
    """The operator's schema in force at the model's opset (ORT matches kernels on its version)."""
    try:
        return onnx.defs.get_schema(node.op_type, opsets.get(domain, 1), domain)
    except onnx.defs.SchemaError:  # ORT's contrib ops and custom domains are not in onnx's registry
        return None


# -- Supported-operator lists with ORT's partitioning estimate -----------------------------------
_ORT_LISTS = {
    # file, runtime, the EP's maximum tensor rank (usability_checker: 5 for CoreML, none for NNAPI)
    Check.nnapi_ops: ("nnapi_supported_ops.md", "ONNX Runtime NNAPI EP", 999),
    Check.coreml_mlprogram_ops: ("coreml_supported_mlprogram_ops.md", "ONNX Runtime CoreML EP (ML Program)", 5),
}


def ort_ep_list(model_path: Path, check: Check) -> CheckReport:
    """NNAPI, CoreML and QNN: the list check on the graph as ORT hands it to the EP.

    ORT applies its basic (ai.onnx-only) optimisations before partitioning, so the graph is
    optimised at that level first, as ORT's usability checker does, then shape-inferred.
    """
    model, note = _as_ort_sees_it(model_path)
    if check is Check.qnn_htp_ops:
        return op_list(model, check, "ONNX Runtime QNN EP (HTP)", qnn_ops.SOURCE, _qnn_verdict(model),
                       fallback=CPU_EP, note=note)
    filename, runtime, max_rank = _ORT_LISTS[check]
    path = Path(usability_checker.__file__).parent / filename
    table = read_ort_op_table(path)
    verdict = _list_verdict(model, table, runtime, max_rank=max_rank)
    return op_list(model, check, runtime, f"onnxruntime {path.name}", verdict, fallback=CPU_EP,
                   caveats=_caveats(model, table, qualified=True), note=note)


def read_ort_op_table(path: Path) -> dict[str, str]:
    """ORT's markdown list: `|domain:op|note|` rows -> {"domain:op": note}."""
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = line.strip().split("|")
        if len(cells) == 4 and ":" in cells[1]:
            table[cells[1].strip()] = cells[2].replace("<br/>", " ").strip()
    return table


Verdict = Callable[[onnx.NodeProto], str]  # "" when the node is supported, else why not


def op_list(model: onnx.ModelProto, check: Check, runtime: str, source: str, verdict: Verdict, *,
            fallback: str | None, caveats: tuple[str, ...] = (), note: str = "") -> CheckReport:
    rows = []
    for node in model.graph.node:
        reason = verdict(node)
        if reason:
            parent = _inlined_from(node)
            reason += f" (ORT expanded the {parent} function into it)" if parent else ""
            rows.append(UnsupportedNode(op_label(node), node_label(node), reason, check.value))
    partitions = _partitions(model, verdict)
    return CheckReport(check.value, runtime, source, ran=True, nodes=len(model.graph.node),
                       supported=len(model.graph.node) - len(rows), unsupported=tuple(rows),
                       partitions=partitions, fallback=fallback, caveats=caveats, note=note)


def _list_verdict(model: onnx.ModelProto, table: dict[str, str], runtime: str, *, max_rank: int) -> Verdict:
    shapes = _value_shapes(model)

    def verdict(node: onnx.NodeProto) -> str:
        if f"{node.domain or 'ai.onnx'}:{node.op_type}" not in table:
            return f"not in {runtime}'s operator list"
        # ORT's NNAPI and CoreML EPs take only nodes whose inputs have fixed sizes (usability_checker).
        return _shape_reason(node, shapes, max_rank)

    return verdict


def _qnn_verdict(model: onnx.ModelProto) -> Verdict:
    shapes = _value_shapes(model)

    def verdict(node: onnx.NodeProto) -> str:
        if (node.domain or "") not in qnn_ops.DOMAINS or node.op_type not in qnn_ops.SUPPORTED:
            return "no QNN EP op builder for this operator"
        # The HTP compiles static graphs only: a node whose input size is unknown stays on the CPU.
        return _shape_reason(node, shapes, max_rank=999)

    return verdict


def _tensorrt_verdict(node: onnx.NodeProto) -> str:
    if node.domain not in ("", "ai.onnx"):
        return f"TensorRT parses ai.onnx operators only (this one is {node.domain}; a TensorRT plugin could run it)"
    if node.op_type in tensorrt_ops.NOT_SUPPORTED:
        return "marked not supported in TensorRT's operator matrix"
    if node.op_type not in tensorrt_ops.SUPPORTED:
        return "not in TensorRT's operator matrix"
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        return "its Indices output is unsupported (TensorRT's operator matrix)"  # SegNet-style pooling indices
    return ""


def _shape_reason(node: onnx.NodeProto, shapes: dict[str, onnx.ValueInfoProto | None], max_rank: int) -> str:
    for name in node.input:
        if not name:  # an absent optional input, not a dynamic one
            continue
        if name not in shapes:  # shape inference could not tell its shape
            return f"input {name!r} has no known shape"
        info = shapes[name]
        if info is None:  # an initializer
            continue
        if not is_fixed_size_tensor(info):
            return f"input {name!r} has no fixed shape"
        rank = len(info.type.tensor_type.shape.dim)
        if rank > max_rank:
            return f"input {name!r} has rank {rank} > {max_rank}"
    return ""


def _value_shapes(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto | None]:
    """Every value's inferred type; initializers map to None (constant: fixed by definition)."""
    shapes: dict[str, onnx.ValueInfoProto | None] = {i.name: None for i in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        shapes[value.name] = value
    return shapes


class _VerdictChecker:
    """What ORT's `check_partitioning` asks of its supported-ops checker, answered by our verdicts."""

    def __init__(self, verdict: Verdict) -> None:
        self._verdict = verdict

    def is_op_supported(self, node: onnx.NodeProto) -> bool:
        return not self._verdict(node)

    def get_caveats(self) -> list[str]:
        return []


def _partitions(model: onnx.ModelProto, verdict: Verdict) -> int | None:
    try:
        info = usability_checker.check_partitioning(model.graph, _VerdictChecker(verdict), False)
    except Exception:  # noqa: BLE001  (an estimate only: a graph it cannot walk gets none)
        return None
    return int(info.num_partitions)


def _caveats(model: onnx.ModelProto, notes: dict[str, str], qualified: bool = False) -> tuple[str, ...]:
    """The source's conditions for the operators this graph uses, one line per operator."""
    used = sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" if qualified else n.op_type for n in model.graph.node})
    return tuple(f"{op}: {notes[op]}" for op in used if notes.get(op))


def _as_ort_sees_it(model_path: Path) -> tuple[onnx.ModelProto, str]:
    """The graph after ORT's basic optimisations, shape-inferred; as written when ORT cannot load it."""
    note = ""
    with work_folder("segedge-check-") as folder:
        optimized = folder / "basic.onnx"
        try:
            with quiet():
                optimize_model(model_path, optimized)
            model = onnx.load(os.fspath(optimized))
        except Exception as exc:  # noqa: BLE001  (ORT cannot load it: an operator it has no kernel for)
            model = onnx.load(os.fspath(model_path))
            note = f"ONNX Runtime cannot load the graph ({runtime_reason(exc)}): checked as written"
    try:
        return onnx.shape_inference.infer_shapes(model), note
    except Exception as exc:  # noqa: BLE001  (onnx's shape inference rejects some foreign graphs)
        return model, (note + "; " if note else "") + f"shape inference failed ({runtime_reason(exc)})"


def _inlined_from(node: onnx.NodeProto) -> str:
    """ORT names the values of an inlined ONNX function `_inlfunc_<Function>_...` (Mish -> Softplus, Tanh, Mul)."""
    label = node_label(node)
    return label[len("_inlfunc_"):].split("_", 1)[0] if label.startswith("_inlfunc_") else ""

