import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from exporters.torch_to_onnx import export_onnx
from runtimes.measure.parity import compare_outputs
from segedge.models.adaptive_pool import ExportableAdaptiveAvgPool2d
from segedge.export.preflight import Severity, preflight, rewrite

EXPORT_SIZE, OTHER_SIZES = (64, 64), ((97, 129), (65, 47))


class UsersPSPNet(nn.Module):
    """A user's own PSPNet-like model, written the usual way with nn.AdaptiveAvgPool2d."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=4, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d((k, k)), nn.Conv2d(16, 4, 1), nn.ReLU())
            for k in (1, 2, 3, 6)
        )
        self.classifier = nn.Conv2d(16 + 4 * 4, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        pooled = [F.interpolate(s(f), size=f.shape[-2:], mode="bilinear") for s in self.stages]
        logits = self.classifier(torch.cat([f, *pooled], dim=1))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear")


@pytest.fixture
def users_model() -> nn.Module:
    torch.manual_seed(0)
    return UsersPSPNet().eval()


def sample(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, h, w)).astype(np.float32)


def parity_at(model: nn.Module, path, size: tuple[int, int]):
    x = sample(*size, seed=1)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return compare_outputs(ref, session.run(None, {"image": x})[0])


def test_report_flags_the_three_bins_and_nothing_else(users_model) -> None:
    report = preflight(users_model, torch.from_numpy(sample(*EXPORT_SIZE)))
    assert [f.where for f in report.findings] == ["stages.1.0", "stages.2.0", "stages.3.0"]
    assert all(f.issue == "adaptive-pool" and f.severity is Severity.error for f in report.findings)
    assert all(f.fixed_by_rewrite for f in report.findings)
    assert not report.ok


def test_without_rewrite_the_export_breaks_at_other_sizes(users_model, tmp_path) -> None:
    # Exported where every bin divides the 24 x 24 map: three fixed AveragePools, silently wrong
    # elsewhere (measured: max error 1.2% of the logits' range, 99.60% argmax agreement).
    even = tmp_path / "even.onnx"
    proto = export_onnx(users_model, even, input_size=(96, 96), exporter="dynamo")
    assert sum(n.op_type == "AveragePool" for n in proto.graph.node) == 3
    assert parity_at(users_model, even, (96, 96)).argmax_agreement == 1.0
    report = parity_at(users_model, even, OTHER_SIZES[0])
    assert report.max_abs > 5e-3 * report.logits_range and report.argmax_agreement < 0.999, report
    # Exported at 64 x 64 (16 x 16 maps, 3 and 6 do not divide): gathers that fail at run time.
    uneven = tmp_path / "uneven.onnx"
    export_onnx(users_model, uneven, input_size=EXPORT_SIZE, exporter="dynamo")
    assert parity_at(users_model, uneven, EXPORT_SIZE).argmax_agreement == 1.0
    with pytest.raises(Exception, match="GatherND"):
        parity_at(users_model, uneven, OTHER_SIZES[0])


def test_rewrite_then_export_holds_at_every_size(users_model, tmp_path) -> None:
    x = torch.from_numpy(sample(*OTHER_SIZES[0]))
    with torch.no_grad():
        before = users_model(x)
    assert rewrite(users_model) == [
        "stages.1.0: AdaptiveAvgPool2d(2) -> ExportableAdaptiveAvgPool2d(2)",
        "stages.2.0: AdaptiveAvgPool2d(3) -> ExportableAdaptiveAvgPool2d(3)",
        "stages.3.0: AdaptiveAvgPool2d(6) -> ExportableAdaptiveAvgPool2d(6)",
    ]
    assert rewrite(users_model) == []
    with torch.no_grad():
        torch.testing.assert_close(users_model(x), before, rtol=1e-5, atol=1e-6)
    assert preflight(users_model, x).findings == ()

    path = tmp_path / "users.onnx"
    proto = export_onnx(users_model, path, input_size=EXPORT_SIZE, exporter="dynamo")
    assert not any(n.op_type == "AveragePool" for n in proto.graph.node)
    for size in (EXPORT_SIZE, *OTHER_SIZES):
        report = parity_at(users_model, path, size)
        assert report.argmax_agreement == 1.0, (size, report)
        assert report.max_abs <= 1e-5 * report.logits_range, (size, report)


def test_rewrite_keeps_a_shared_pool_shared() -> None:
    pool = nn.AdaptiveAvgPool2d(3)
    model = nn.Sequential(pool, nn.Sequential(pool))
    assert rewrite(model) == [
        "0: AdaptiveAvgPool2d(3) -> ExportableAdaptiveAvgPool2d(3)",
        "1.0: AdaptiveAvgPool2d(3) -> ExportableAdaptiveAvgPool2d(3)",
    ]
    assert model[0] is model[1][0] and isinstance(model[0], ExportableAdaptiveAvgPool2d)


class Resizes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corners = F.interpolate(x, size=(7, 7), mode="bilinear", align_corners=True)
        smooth = F.interpolate(x, size=(7, 7), mode="bilinear", antialias=True)
        pooled = F.adaptive_max_pool2d(x, 2)
        return self.up(x).mean() + corners.mean() + smooth.mean() + pooled.mean()


def test_resizes_and_functional_pools_are_found_with_their_module() -> None:
    model = Resizes().train()
    report = preflight(model, torch.randn(1, 3, 10, 12), opset=17)
    found = {(f.where, f.issue, f.severity, f.fixed_by_rewrite) for f in report.findings}
    assert found == {
        ("up", "resize-scale-factor", Severity.warning, False),
        ("(model)", "resize-align-corners", Severity.info, False),
        ("(model)", "resize-antialias", Severity.error, False),
        ("(model)", "adaptive-pool", Severity.error, False),
    }
    assert model.training  # preflight leaves the mode as it found it
    at_18 = preflight(model, torch.randn(1, 3, 10, 12), opset=18)
    assert not at_18.issues("resize-antialias")


class RunningMax(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(x, dim=2).values


def test_graph_check_lists_ops_the_exporter_cannot_translate() -> None:
    model = nn.Sequential(nn.Conv2d(3, 3, 1), RunningMax())
    report = preflight(model, torch.randn(1, 3, 8, 8), graph=True)
    assert [(f.where, f.issue) for f in report.findings] == [("1", "no-onnx-op")]
    assert "aten::cummax" in report.findings[0].detail
    assert preflight(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 8, 8), graph=True).findings == ()


class TinyAttention(nn.Module):
    """One pre-norm self-attention block over 4x4 patches, the way a user writes it."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(self.norm(tokens)).chunk(3, dim=-1)
        attended = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return self.mlp(attended)


def test_transformer_ops_are_counted_once_per_kind() -> None:
    report = preflight(TinyAttention(), torch.randn(1, 3, 16, 16))
    found = {f.issue: f for f in report.findings}
    assert set(found) == {"layer-norm", "softmax", "gelu", "attention-matmul"}
    assert found["attention-matmul"].detail.endswith("(2 calls)")  # Q K^T and softmax(.) V, not the Linears
    assert found["layer-norm"].where == "norm" and found["gelu"].where == "mlp.1"
    assert all(f.severity is Severity.info for f in report.findings) and report.ok


class PaddedWindows(nn.Module):
    """Pads to a multiple of a 7-token window with Python ints from the shape: what breaks Swin exports."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (7 - int(x.shape[-1]) % 7) % 7
        return F.pad(x, (0, pad))


def test_graph_check_finds_shape_arithmetic_the_tracer_bakes_in(tmp_path) -> None:
    report = preflight(PaddedWindows(), torch.randn(1, 3, 8, 10), graph=True)
    baked = report.issues("traced-constant")
    assert len(baked) == 1 and baked[0].severity is Severity.warning and "test_preflight.py" in baked[0].where
    # And it is right: the TorchScript export of it is wrong at another width.
    export_onnx(PaddedWindows(), tmp_path / "pad.onnx", input_size=(8, 10), exporter="torchscript")
    session = ort.InferenceSession(str(tmp_path / "pad.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"image": sample(8, 10)})[0].shape[-1] == 14
    with pytest.raises(Exception):  # 12 wide would pad by 2, the graph pads by 4: a shape error or a wrong width
        out = session.run(None, {"image": sample(8, 12)})[0]
        assert out.shape[-1] == 14
    assert not preflight(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 8, 8), graph=True).issues("traced-constant")


@pytest.mark.parametrize("name, options", [("upernet_swin_t", {"channels": 32}), ("segformer_b0", {})])
def test_segedge_transformers_have_no_baked_in_shapes(name, options) -> None:
    from segedge.models import build_model

    torch.manual_seed(0)
    report = preflight(build_model(name, num_classes=3, **options), torch.randn(1, 3, 65, 47), graph=True)
    assert not report.issues("traced-constant") and not report.issues("no-onnx-op")
    assert {"layer-norm", "softmax", "gelu", "attention-matmul"} <= {f.issue for f in report.findings}
