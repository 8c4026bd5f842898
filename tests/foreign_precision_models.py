"""Trained models as other tools write them, for issue 29's tests: old opsets, fp16 inside, already
quantized, and the input/output shapes users bring. Every file is made by the library a user would
have used (never by segedge's exporter), from the trained U-Net of `segedge.train.recipe.SMALL`
(the `demo_models` fixture's weights, so no training is added), at 64 x 64:

- `op11`, `op12`: `torch.onnx.export(dynamo=False)` at opset 11 and 12 (PaddleSeg / older mmdeploy);
- `conv11`, `conv12`: the opset-10 and -11 exports brought to 11 and 12 by `onnx.version_converter`
  (it converts upwards only);
- `fp16_keep_io`: onnxconverter-common's `convert_float_to_float16(keep_io_types=True)`;
- `half`: a `model.half()` export fed float input (Casts into and out of fp16 around an fp16 graph);
- `dynamic`, `qoperator`: ONNX Runtime's `quantize_dynamic` and `quantize_static(QuantFormat.QOperator)`;
- `fixed_batch`: batch fixed to 1, H and W dynamic;
- `nhwc255`: N x H x W x 3 float pixels in 0..255, the normalisation inside, an N x H x W x C output;
- `channels_last_out`: an NCHW input and an N x H/2 x W/2 x C output (CRAFT's text detector's shape).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from runtimes.guards.fileio import exclusive_lock
from segedge.train.recipe import TrainedModel

DYNAMIC = {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}}
CALIB_IMAGES = 32  # as tests/precision_models.py: 16 left a class of the trained U-Net at IoU 0.75 vs fp32


@dataclass(frozen=True)
class ForeignFiles:
    trained: TrainedModel
    folder: Path
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __getitem__(self, name: str) -> Path:
        return self.folder / f"{name}.onnx"

    @property
    def card_options(self) -> tuple[str, ...]:
        """What a user of these files must say: the normalisation they were trained with."""
        return ("--mean", ",".join(map(str, self.mean)), "--std", ",".join(map(str, self.std)))


class NHWC255(nn.Module):
    """TensorFlow-style: float pixels 0..255 in, N x H x W x 3; the normalisation in the graph; N x H x W x C out."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.permute(0, 3, 1, 2) - self.mean) / self.std).permute(0, 2, 3, 1)


class ChannelsLastHalf(nn.Module):
    """NCHW in; N x H/2 x W/2 x C out, as CRAFT's detector returns its score maps."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.net(x), 2).permute(0, 2, 3, 1)


class HalfInside(nn.Module):
    """A half-precision network called on float input: what `model.half()` plus casts exports."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def build_foreign_files(trained: TrainedModel, root: Path) -> ForeignFiles:
    folder = root / "foreign-precision"
    folder.mkdir(exist_ok=True)
    from segedge.sources import build

    card = build(trained.config.model, options=trained.build_options).card
    files = ForeignFiles(trained, folder, card.mean, card.std)
    with exclusive_lock(root / "foreign-precision.lock"):
        if not files["qoperator"].exists():
            _make(files)
    return files


def _net(trained: TrainedModel) -> nn.Module:
    from segedge.sources import build

    net = build(trained.config.model, options=trained.build_options).module
    net.load_state_dict(torch.load(trained.checkpoint, map_location="cpu", weights_only=True))
    return net.eval()


def _export(model: nn.Module, path: Path, sample: torch.Tensor, opset: int, dynamic: dict | None) -> None:
    with torch.no_grad():
        torch.onnx.export(model.eval(), (sample,), os.fspath(path), dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"], dynamic_axes=dynamic)


def _make(files: ForeignFiles) -> None:
    from onnxconverter_common import float16
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    net = _net(files.trained)
    sample = torch.randn(1, 3, 64, 64)
    for opset in (10, 11, 12, 17):
        _export(net, files[f"op{opset}"], sample, opset, DYNAMIC)
    for opset in (11, 12):  # onnx's converter only upgrades (no adapter down from Identity 16): from the opset below
        older = onnx.load(os.fspath(files[f"op{opset - 1}"]))
        onnx.save(onnx.version_converter.convert_version(older, opset), os.fspath(files[f"conv{opset}"]))
    latest = onnx.load(os.fspath(files["op17"]))
    with warnings.catch_warnings():  # "the float32 number 8e-08 will be truncated": the converter's way, as users see it
        warnings.simplefilter("ignore", UserWarning)
        onnx.save(float16.convert_float_to_float16(latest, keep_io_types=True), os.fspath(files["fp16_keep_io"]))
    _export(HalfInside(_net(files.trained)), files["half"], sample, 17, DYNAMIC)
    _export(net, files["fixed_batch"], sample, 17, {"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}})
    _export(NHWC255(net, files.mean, files.std), files["nhwc255"], torch.rand(1, 64, 64, 3) * 255, 17,
            {"x": {0: "n", 1: "h", 2: "w"}, "y": {0: "n", 1: "h", 2: "w"}})
    _export(ChannelsLastHalf(net), files["channels_last_out"], sample, 17,
            {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 1: "h", 2: "w"}})
    quantize_dynamic(os.fspath(files["op17"]), os.fspath(files["dynamic"]), weight_type=QuantType.QUInt8)

    class Reader(CalibrationDataReader):  # the user's own: normalised random crops are enough to make the file
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"x": rng.standard_normal((1, 3, 64, 64)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    # ONNX Runtime's documented recipe: its pre-processor first (the raw export's BatchNorm-fed biases trip the quantizer).
    quant_pre_process(os.fspath(files["op17"]), os.fspath(files.folder / "prepared.onnx"), skip_symbolic_shape=True)
    quantize_static(os.fspath(files.folder / "prepared.onnx"), os.fspath(files["qoperator"]), Reader(),
                    quant_format=QuantFormat.QOperator)
