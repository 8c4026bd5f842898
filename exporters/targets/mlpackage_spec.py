"""Reading a Core ML .mlpackage without running it: its spec, its operators, its shapes, its card.

`read_mlpackage` loads the package's model spec (protobuf, through coremltools) and returns what
`segedge info` prints and what the mlpackage target checks after writing: the model format and
specification version, the image input (colour layout, fixed size or the ranges of a flexible
one), the outputs' shapes and data types, the segedge card from the user metadata, and the ML
Program's operators. `check_mil_ops` judges those operators against coremltools' registry of
MIL operators (the operators its documentation lists, each with the first iOS opset that has it).
What a Core ML model does with its operators at run time (Neural Engine, GPU or CPU) only a
device can tell.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtimes.model.card import CARD_KEY, ModelCard
from runtimes.errors import CardError, ModelFileError

from .coreml_quiet import coremltools, silenced
from .result import CheckReport, UnsupportedNode

TARGET_KEY = "segedge.target"


@dataclass(frozen=True)
class MlTensor:
    name: str
    kind: str  # "image RGB", "multiarray FLOAT32", ...
    shape: tuple[int, ...]  # the default (or fixed) shape
    ranges: tuple[tuple[int, int], ...] = ()  # per axis (low, high; -1 unbounded) when flexible

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape)) if self.shape else "(its shape follows the input's)"
        text = f"{self.name}: {self.kind} {shape}"
        if self.ranges:
            text += " (flexible: " + ", ".join(f"{lo}..{'any' if hi < 0 else hi}" for lo, hi in self.ranges) + ")"
        return text


@dataclass(frozen=True)
class MlPackageInfo:
    path: Path
    size_mb: float
    format: str  # "Core ML ML Program (.mlpackage)"
    specification_version: int
    inputs: tuple[MlTensor, ...]
    outputs: tuple[MlTensor, ...]
    card: ModelCard | None
    target: dict[str, Any] | None
    operators: dict[str, int] = field(default_factory=dict)  # MIL op type -> count
    opset: str = ""  # the ML Program's opset (e.g. "CoreML7")

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size_mb": self.size_mb, "format": self.format,
                "specification_version": self.specification_version, "opset": self.opset,
                "inputs": [t.describe() for t in self.inputs], "outputs": [t.describe() for t in self.outputs],
                "card": self.card.to_dict() if self.card else None, "target": self.target,
                "operators": self.operators}


def is_mlpackage(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ".mlpackage"


def read_mlpackage(path: str | os.PathLike[str]) -> MlPackageInfo:
    path = Path(path)
    if not (path / "Manifest.json").is_file():
        raise ModelFileError(f"{path} is not a Core ML package (no Manifest.json)")
    ct = coremltools()
    try:
        with silenced():
            spec = ct.utils.load_spec(os.fspath(path))
    except Exception as exc:  # protobuf's DecodeError, coremltools' own errors: an unreadable package either way
        raise ModelFileError(f"cannot read the Core ML package {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    meta = dict(spec.description.metadata.userDefined)
    try:
        card = ModelCard.from_json(meta[CARD_KEY]) if CARD_KEY in meta else None
    except CardError as exc:
        raise ModelFileError(f"{path}: its segedge card is unreadable ({exc})") from None
    kind = spec.WhichOneof("Type")
    operators: Counter[str] = Counter()
    opset = ""
    if kind == "mlProgram":
        for function in spec.mlProgram.functions.values():
            opset = function.opset
            for block in function.block_specializations.values():
                _count_ops(block, operators)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return MlPackageInfo(
        path=path, size_mb=size / 2**20,
        format="Core ML ML Program (.mlpackage)" if kind == "mlProgram" else f"Core ML {kind} (.mlpackage)",
        specification_version=int(spec.specificationVersion),
        inputs=tuple(_tensor(d) for d in spec.description.input),
        outputs=tuple(_tensor(d) for d in spec.description.output), card=card,
        target=json.loads(meta[TARGET_KEY]) if TARGET_KEY in meta else None,
        operators=dict(sorted(operators.items())), opset=opset,
    )


def check_mil_ops(info: MlPackageInfo, deployment: str) -> CheckReport:
    """Every operator of the program against coremltools' MIL registry, at the `deployment` opset ("iOS16")."""
    ct = coremltools()
    with silenced():
        from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry
    target = getattr(ct.target, deployment)
    rows = []
    for op, count in info.operators.items():
        versions = SSAOpRegistry.core_ops.get(op, {})
        if not any(version <= target for version in versions):
            reason = ("not a documented MIL operator" if not versions
                      else f"first in {min(versions).name}, after the package's {deployment}")
            rows.append(UnsupportedNode(op, f"{count} op(s)", reason, "coreml_mil_ops"))
    nodes = sum(info.operators.values())
    return CheckReport(
        "coreml_mil_ops", "Core ML ML Program", f"coremltools {ct.__version__} MIL operator registry (ops.defs)",
        ran=True, nodes=nodes, supported=nodes - sum(int(r.node.split()[0]) for r in rows), unsupported=tuple(rows),
        caveats=("which compute unit (Neural Engine, GPU, CPU) runs each operator is Core ML's choice on the device",),
    )


def _count_ops(block: Any, counter: Counter[str]) -> None:
    for op in block.operations:
        counter[op.type] += 1
        for inner in op.blocks:
            _count_ops(inner, counter)


def _tensor(description: Any) -> MlTensor:
    which = description.type.WhichOneof("Type")
    if which == "imageType":
        image = description.type.imageType
        layout = {10: "grayscale", 20: "RGB", 30: "BGR"}.get(int(image.colorSpace), str(image.colorSpace))
        ranges: tuple[tuple[int, int], ...] = ()
        if image.WhichOneof("SizeFlexibility") == "imageSizeRange":
            r = image.imageSizeRange
            ranges = ((int(r.heightRange.lowerBound), int(r.heightRange.upperBound)),
                      (int(r.widthRange.lowerBound), int(r.widthRange.upperBound)))
        return MlTensor(description.name, f"image {layout}", (int(image.height), int(image.width)), ranges)
    array = description.type.multiArrayType
    dtype = {65568: "FLOAT32", 65552: "FLOAT16", 65600: "DOUBLE", 131104: "INT32"}.get(int(array.dataType),
                                                                                   str(array.dataType))
    ranges = ()
    if array.WhichOneof("ShapeFlexibility") == "shapeRange":
        ranges = tuple((int(r.lowerBound), int(r.upperBound)) for r in array.shapeRange.sizeRanges)
    return MlTensor(description.name, f"multiarray {dtype}", tuple(int(d) for d in array.shape), ranges)
