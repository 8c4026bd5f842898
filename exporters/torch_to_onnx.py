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
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

import onnx
import torch
from torch import nn

from runtimes.errors import ExportError
from runtimes.guards.fileio import atomic_path
from runtimes.backends.messages import runtime_reason

DEFAULT_OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


class Exporter(str, Enum):
    dynamo = "dynamo"
    torchscript = "torchscript"


class LogitsOnly(nn.Module):
    """Unwraps a model's output to its logits tensor (see `pick_logits`); `output_key` chooses."""

    def __init__(self, model: nn.Module, output_key: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.output_key = output_key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pick_logits(self.model(x), self.output_key)[0]


def first_tensor(out: object, key: str | None = None) -> torch.Tensor:
    """The logits of a model output (see `pick_logits`)."""
    return pick_logits(out, key)[0]


# Keys that hold the logits in the libraries users train with: torchvision's {"out", "aux"}, Hugging
# Face's output objects (`.logits`), mmseg-style {"seg_logits"}.
_LOGITS_KEYS = ("out", "logits", "seg_logits")


def pick_logits(out: object, key: str | None = None) -> tuple[torch.Tensor, list[str]]:
    """(the logits tensor of a model output, notes on what was left out).

    A tensor is itself. A mapping (a dict, or a Hugging Face `ModelOutput`, which is one) gives
    `out[key]`, else its first of "out", "logits", "seg_logits", else its first value; a tuple or
    list gives its element `key` (an index) or its first. The other entries (torchvision's "aux",
    a tuple's second head) are dropped, and the notes say so.
    """
    if isinstance(out, torch.Tensor):
        return out, []
    if isinstance(out, Mapping) and out:
        keys = [k for k, v in out.items() if v is not None]
        chosen = key if key is not None else next((k for k in _LOGITS_KEYS if k in keys), keys[0] if keys else None)
        if chosen not in keys:
            raise ExportError(f"the model's output has no key {chosen!r}; it has {', '.join(map(repr, keys))} (--output-key)")
        tensor, notes = pick_logits(out[chosen])
        dropped = [str(k) for k in keys if k != chosen]
        note = f"output {chosen!r} used; {', '.join(map(repr, dropped))} dropped (choose another with --output-key)"
        return tensor, notes + ([note] if dropped else [])
    if isinstance(out, (tuple, list)) and out:
        try:
            index = int(key) if key is not None else 0
            chosen_item = out[index]
        except (ValueError, IndexError):
            raise ExportError(f"the model returns a {type(out).__name__} of {len(out)}; --output-key must be an "
                              f"index in 0..{len(out) - 1}, got {key!r}") from None
        tensor, notes = pick_logits(chosen_item)
        if len(out) > 1:
            notes.append(f"output {index} of the {len(out)} the model returns used, the others dropped "
                         "(choose another with --output-key)")
        return tensor, notes
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
    output_axes: tuple[str, str] = ("H", "W"),
) -> onnx.ModelProto:
    """Export `model` to one self-contained ONNX file at `path` (written atomically).

    Returns the loaded ModelProto. The input is `image` (N x 3 x H x W float32), the output
    `logits`; with `dynamic`, N, H and W are symbolic. `output_axes`: the names of the output's
    dynamic H and W (the torchscript exporter's; other names when the output is not the input's size).
    """
    exporter = Exporter(exporter)
    model = model.eval()
    # torch.export specialises a batch of 1 wherever a model's code makes it guard on it (Hugging
    # Face SegFormer's `.view` of a transposed tensor guards `batch == 1`), fixing the ONNX batch
    # to 1; traced at batch 2 the graph keeps N symbolic and runs at batch 1 all the same.
    if dynamic and exporter is Exporter.dynamo and batch == 1:
        batch = 2
    sample = torch.randn(batch, 3, *input_size)
    with atomic_path(path, suffix=".onnx") as tmp:
        try:
            with _quiet(verbose), torch.inference_mode(False), torch.no_grad():
                if exporter is Exporter.dynamo:
                    _export_dynamo(model, sample, tmp, dynamic, opset)
                else:
                    _export_torchscript(model, sample, tmp, dynamic, opset, output_axes)
            proto = onnx.load(str(tmp))
            _name_axes(proto, dynamic)
            onnx.save(proto, str(tmp))
        except ExportError:
            raise
        except Exception as exc:  # torch raises many unrelated types; report them as one
            message = runtime_reason(exc)
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


def _export_torchscript(model: nn.Module, sample: torch.Tensor, path: Path, dynamic: bool, opset: int,
                        output_axes: tuple[str, str]) -> None:
    axes = {0: "N", 2: "H", 3: "W"}
    out_axes = {0: "N", 2: output_axes[0], 3: output_axes[1]}
    torch.onnx.export(
        model,
        (sample,),
        str(path),
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: out_axes} if dynamic else None,
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
