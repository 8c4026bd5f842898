import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from exporters.torch_to_onnx import export_onnx
from segedge.models.adaptive_pool import (
    ExportableAdaptiveAvgPool2d,
    ExportableAdaptiveMaxPool2d,
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
)

BINS = (1, 2, 3, 6)
OUTPUT_SIZES = [*BINS, (2, 5), (None, 3), (4, None)]


def every_shape():
    for height in range(1, 41):  # includes lengths below the bin count (overlapping bins)
        for width in (1, 5, 13, 47, 129):
            yield height, width


@pytest.mark.parametrize("output_size", OUTPUT_SIZES)
def test_average_equals_torch_at_every_length(output_size) -> None:
    torch.manual_seed(0)
    for height, width in every_shape():
        x = torch.randn(2, 3, height, width)
        expected = F.adaptive_avg_pool2d(x, output_size)
        got = adaptive_avg_pool2d(x, output_size)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)  # sums in another order


@pytest.mark.parametrize("output_size", OUTPUT_SIZES)
def test_max_is_bit_exact_at_every_length(output_size) -> None:
    torch.manual_seed(0)
    for height, width in every_shape():
        x = torch.randn(2, 3, height, width)
        assert torch.equal(adaptive_max_pool2d(x, output_size), F.adaptive_max_pool2d(x, output_size))


class Pyramid(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.avg = torch.nn.ModuleList(ExportableAdaptiveAvgPool2d(k) for k in BINS)
        self.max = torch.nn.ModuleList(ExportableAdaptiveMaxPool2d(k) for k in BINS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pool(x).flatten(1) for pool in [*self.avg, *self.max]], dim=1)


def torch_pyramid(x: torch.Tensor) -> torch.Tensor:
    pooled = [F.adaptive_avg_pool2d(x, k) for k in BINS] + [F.adaptive_max_pool2d(x, k) for k in BINS]
    return torch.cat([p.flatten(1) for p in pooled], dim=1)


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_exports_with_dynamic_height_and_width(exporter: str, tmp_path) -> None:
    path = tmp_path / "pyramid.onnx"
    proto = export_onnx(Pyramid(), path, input_size=(64, 64), exporter=exporter)
    ops = {node.op_type for node in proto.graph.node}
    assert not ops & {"AveragePool", "MaxPool"} and "MatMul" in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for size in ((97, 129), (65, 47), (80, 56), (5, 3), (64, 64)):
        x = rng.standard_normal((2, 3, *size)).astype(np.float32)
        got = session.run(None, {"image": x})[0]
        np.testing.assert_allclose(got, torch_pyramid(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_pyramid_pooling_quantizes_and_lowers_to_executorch() -> None:
    """PSPNet's pooling through ExecuTorch's int8 path: PT2E calibration, then XNNPACK's lowering, whose
    channels-last pass failed on a quantized 0-d constant (the bin areas once started from `ones(())`)."""
    pytest.importorskip("executorch")
    from exporters.targets.executorch import lower, quantized
    from segedge.models.heads.ppm import PyramidPoolingModule

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 8, stride=8), PyramidPoolingModule(16, 4, BINS)).eval()
    calibration = [np.random.default_rng(i).random((3, 96, 96), dtype=np.float32) for i in range(2)]
    program = lower(quantized(model, (96, 96), None, calibration), (96, 96), None, "{}", {})
    assert program.program[4:8] == b"ET12"  # an ExecuTorch program's file identifier
