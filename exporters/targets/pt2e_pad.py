"""A PT2E annotator for zero pads of quantized tensors, composed with ExecuTorch's XNNPACKQuantizer.

XNNPACKQuantizer leaves `pad` unannotated. When a pad reads a quantized tensor (Swin's patch merging
pads the blocks' residual sum to even sides), the converted graph is dequantize -> pad -> quantize with
the next op's scale, and XNNPACK's static constant pad takes only equal input and output quantization:
the program lowers, then fails to load ("Failed to create StaticConstantPad node ...:
xnn_status_invalid_parameter"). A zero pad does not change a tensor's range, so here its input and
output share the producer's observer: the pad runs quantized inside XNNPACK, with one scale.
"""

from __future__ import annotations

from typing import Any

import torch

_PADS = (torch.ops.aten.pad.default, torch.ops.aten.constant_pad_nd.default)
_KEY = "quantization_annotation"  # where PT2E quantizers keep a node's annotation


def pad_quantizer() -> Any:
    """A torchao `Quantizer` to compose after XNNPACKQuantizer (`ComposableQuantizer([xnnpack, pad_quantizer()])`)."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, Quantizer, SharedQuantizationSpec

    class ZeroPadSharesItsInput(Quantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            for node in model.graph.nodes:
                if node.op != "call_function" or node.target not in _PADS or _KEY in node.meta:
                    continue
                producer = node.args[0]
                produced = producer.meta.get(_KEY) if isinstance(producer, torch.fx.Node) else None
                # only where the producer's output is quantized (a float producer leaves the pad float) and
                # the pad adds zeros (what the shared scale represents exactly)
                if produced is None or produced.output_qspec is None or not _adds_zeros(node):
                    continue
                shared = SharedQuantizationSpec(producer)
                node.meta[_KEY] = QuantizationAnnotation(input_qspec_map={producer: shared}, output_qspec=shared,
                                                         _annotated=True)
            return model

        def validate(self, model: torch.fx.GraphModule) -> None:
            pass

    return ZeroPadSharesItsInput()


def _adds_zeros(node: torch.fx.Node) -> bool:
    """A constant pad with the value 0: `constant_pad_nd(x, pad, value=0)` or `pad(x, pad, "constant", None or 0)`."""
    if node.target is torch.ops.aten.constant_pad_nd.default:
        return bool((node.args[2] if len(node.args) > 2 else node.kwargs.get("value", 0.0)) == 0.0)
    mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
    value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value")
    return mode == "constant" and value in (None, 0.0)
