"""PyTorch -> ONNX with either of torch's exporters, dynamic N/H/W by default, one file on disk.

`dynamo` is the `torch.export`-based exporter (needs onnxscript); `torchscript` is the tracing
one. Both are asked for sizes, not scale factors, so the graph holds at every input size.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from enum import Enum
from pathlib import Path

import onnx
import torch
from torch import nn

from runtimes.errors import ExportError
from runtimes.fileio import atomic_path

DEFAULT_OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


class Exporter(str, Enum):
    dynamo = "dynamo"
    torchscript = "torchscript"


class LogitsOnly(nn.Module):
    """Unwraps a model whose forward returns a dict (`{"out": ...}`) or a tuple to its logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return first_tensor(self.model(x))


def first_tensor(out: object) -> torch.Tensor:
    """The logits of a model output: the tensor itself, `out["out"]`, or the first element."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) and out:
        return first_tensor(out["out"] if "out" in out else next(iter(out.values())))
    if isinstance(out, (tuple, list)) and out:
        return first_tensor(out[0])
    raise ExportError(f"model output of type {type(out).__name__} holds no logits tensor")


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_size: tuple[int, int],
    batch: int = 1,
    dynamic: bool = True,
    opset: int = DEFAULT_OPSET,
    exporter: Exporter | str = Exporter.dynamo,
    verbose: bool = False,
) -> onnx.ModelProto:
    """Export `model` to one self-contained ONNX file at `path` (written atomically).

    Returns the loaded ModelProto. The input is `image` (N x 3 x H x W float32), the output
    `logits`; with `dynamic`, N, H and W are symbolic.
    """
    exporter = Exporter(exporter)
    model = model.eval()
    sample = torch.randn(batch, 3, *input_size)
    with atomic_path(path, suffix=".onnx") as tmp:
        try:
            with _quiet(verbose), torch.inference_mode(False), torch.no_grad():
                if exporter is Exporter.dynamo:
                    _export_dynamo(model, sample, tmp, dynamic, opset)
                else:
                    _export_torchscript(model, sample, tmp, dynamic, opset)
            proto = onnx.load(str(tmp))
            _name_axes(proto, dynamic)
            onnx.save(proto, str(tmp))
        except ExportError:
            raise
        except Exception as exc:  # torch raises many unrelated types; report them as one
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{exporter.value} export failed: {message}") from exc
    return proto


def _export_dynamo(model: nn.Module, sample: torch.Tensor, path: Path, dynamic: bool, opset: int) -> None:
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim.DYNAMIC
        dynamic_shapes = ({0: dim, 2: dim, 3: dim},)
    program = torch.onnx.export(
        model,
        (sample,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=dynamic_shapes,
        opset_version=opset,
        external_data=False,
        optimize=True,
        verbose=False,
    )
    if program is None:  # torch returns None only when given a file name to write itself
        raise ExportError("the dynamo exporter returned no program")
    program.save(str(path), external_data=False)


def _export_torchscript(model: nn.Module, sample: torch.Tensor, path: Path, dynamic: bool, opset: int) -> None:
    axes = {0: "N", 2: "H", 3: "W"}
    torch.onnx.export(
        model,
        (sample,),
        str(path),
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if dynamic else None,
        opset_version=opset,
        do_constant_folding=True,
    )


def _name_axes(proto: onnx.ModelProto, dynamic: bool) -> None:
    """Call the dynamic axes N, H and W everywhere (the dynamo exporter names them s0, s53...)."""
    if not dynamic:
        return
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    rename = {dims[i].dim_param: new for i, new in ((0, "N"), (2, "H"), (3, "W")) if dims[i].dim_param}
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in rename:
                dim.dim_param = rename[dim.dim_param]


@contextlib.contextmanager
def _quiet(verbose: bool):
    """torch's exporters print progress and warnings we report ourselves; keep them quiet."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
