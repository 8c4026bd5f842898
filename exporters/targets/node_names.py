"""How a check report names an ONNX node and its operator (shared by every target's check)."""

from __future__ import annotations

import onnx


def node_label(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else "?")


def op_label(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
