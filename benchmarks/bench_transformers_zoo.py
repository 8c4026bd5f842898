"""Issue 16's transformer rows: parameters, GFLOPs and export time of UperNet-Swin and SegFormer.

    python benchmarks/bench_transformers_zoo.py [--size 512] [--export swin_t,segformer_b0] [--no-export]

Parameters are counted from the code and GFLOPs with torch.utils.flop_counter.FlopCounterMode
on one forward, both on the meta device (shapes only: no memory, no arithmetic). Export time is
one `export_onnx` per model and exporter (dynamic N/H/W, opset 18, not simplified) at the
size given. Writes benchmarks/results/transformers_zoo.md; the ONNX Runtime / OpenVINO speed
rows are bench_trained.py's, on demo-trained weights (the section says where).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import onnx
import torch
from torch.utils.flop_counter import FlopCounterMode

from exporters.torch_to_onnx import export_onnx
from runtimes.guards.fileio import write_text_atomic
from runtimes.measure.machine import machine_record
from segedge.models import build_model, get_spec, list_models

RESULTS = Path(__file__).parent / "results"
FAMILIES = ("upernet", "segformer")
# What the papers report, in multiply-adds ("FLOPs" in their tables), at the size they state.
PAPER_GMACS = {
    "upernet_swin_t": (945, (512, 2048)), "upernet_swin_s": (1038, (512, 2048)), "upernet_swin_b": (1188, (512, 2048)),
    "segformer_b0": (8.4, (512, 512)), "segformer_b1": (15.9, (512, 512)), "segformer_b2": (62.4, (512, 512)),
    "segformer_b3": (79.0, (512, 512)), "segformer_b4": (95.7, (512, 512)), "segformer_b5": (183.3, (640, 640)),
}
EXPORT_NAMES = {"swin_t": "upernet_swin_t", "segformer_b0": "segformer_b0"}


def transformer_models() -> list[str]:
    return [s.name for s in list_models() if s.name in PAPER_GMACS]


def params(name: str) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(name).parameters())


def gflops(name: str, size: tuple[int, int]) -> float:
    """FLOPs of one forward at batch 1 (FlopCounterMode: 2 per multiply-add of matmuls and convs)."""
    with torch.device("meta"):
        model = build_model(name)
        x = torch.zeros(1, 3, *size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def export_row(name: str, exporter: str, size: tuple[int, int], workdir: Path) -> dict:
    torch.manual_seed(0)
    model = build_model(name)
    path = workdir / f"{name}_{exporter}.onnx"
    start = time.perf_counter()
    export_onnx(model, path, input_size=size, exporter=exporter)
    seconds = time.perf_counter() - start
    proto = onnx.load(str(path))
    row = {"name": name, "exporter": exporter, "seconds": seconds, "mb": path.stat().st_size / 1e6,
           "nodes": len(proto.graph.node)}
    path.unlink()
    return row


def compute_table(size: int) -> list[str]:
    lines = [
        f"| model | params (segedge) | reference | GFLOPs at {size}x{size} | GMACs at {size}x{size} | "
        "GMACs at the paper's size | paper |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in transformer_models():
        spec = get_spec(name)
        paper, paper_size = PAPER_GMACS[name]
        ours = gflops(name, (size, size))
        at_paper = ours if paper_size == (size, size) else gflops(name, paper_size)
        lines.append(
            f"| `{name}` | {params(name):,} | {spec.reference_params / 1e6:.1f}M | {ours:.1f} | {ours / 2:.1f} | "
            f"{at_paper / 2:.1f} ({paper_size[0]}x{paper_size[1]}) | {paper} |"
        )
    return lines


def export_table(names: list[str], size: int) -> list[str]:
    lines = [
        "| model | exporter | export s | ONNX MB | nodes |",
        "|---|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="segedge-transformers-") as workdir:
        for name in names:
            for exporter in ("dynamo", "torchscript"):
                print(f"exporting {name} with {exporter} ...", flush=True)
                r = export_row(name, exporter, (size, size), Path(workdir))
                lines.append(f"| `{name}` | {exporter} | {r['seconds']:.1f} | {r['mb']:.1f} | {r['nodes']:,} |")
    return lines


SPEED_SECTION = [
    "## Speed: ONNX Runtime and OpenVINO at 512x512",
    "",
    "Measured on demo-trained weights, where every row also has its mIoU (the speed of a file does not",
    "depend on its weights; its int8 accuracy does): `benchmarks/bench_trained.py --models",
    "segformer_b0,upernet_swin_t` writes the report's rows (fp32 / fp16 / int8 on ONNX Runtime's CPU provider",
    "and OpenVINO, PyTorch eager and torch.compile, one interleaved run per model) into",
    "[trained.md](trained.md); `benchmarks/bench_transformer_precision.py` times each int8 variant",
    "(segedge's float rule or not, NNCF's TRANSFORMER type or not) in",
    "[transformer_precision.md](transformer_precision.md). The demo recipe narrows UperNet-Swin-T's head to",
    "128 channels, so its rows are that model's, not the 512-channel zoo default's counted above.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--export", default="swin_t,segformer_b0", help="models to time the exporters on")
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()
    exports = [] if args.no_export else [EXPORT_NAMES.get(n, n) for n in args.export.split(",") if n]
    cpu = machine_record()["cpu"]
    lines = [
        f"# Transformers in the zoo: parameters, compute and export time ({args.size}x{args.size})",
        "",
        "`python benchmarks/bench_transformers_zoo.py` (issue 16). Parameters are counted from the code;",
        "the reference is the paper's count, which for UperNet + Swin includes the training-only auxiliary",
        "FCN head that segedge omits (0.92M for Swin-T/S, 1.22M for Swin-B at 150 classes: see each",
        "model's note in the README's zoo table). 150 classes (ADE20K) throughout.",
        "",
        "GFLOPs: `torch.utils.flop_counter.FlopCounterMode` over one forward at batch 1 (on the meta",
        "device), which counts 2 FLOPs per multiply-add of every matmul, batched matmul (attention)",
        "and convolution, and nothing for softmax, LayerNorm, GELU, element-wise ops or resizes.",
        "GMACs = GFLOPs / 2: the convention of the papers' \"FLOPs\" columns (fvcore / mmcv count one",
        "per multiply-add), so that column compares with the paper's, at the size the paper used",
        "(Swin: Table 3, 512x2048; SegFormer: Table 1, ADE20K at 512x512, B5 at 640x640). The papers'",
        "UperNet counts include the auxiliary head (about 0.9 GMACs at 512x2048).",
        "",
        *compute_table(args.size),
    ]
    if exports:
        load = os.getloadavg()
        lines += [
            "",
            f"## Export time ({args.size}x{args.size} sample, dynamic N/H/W, opset 18, not simplified)",
            "",
            *export_table(exports, args.size),
            "",
            f"CPU: {cpu['model']} ({cpu['usable_cpus']} usable CPUs), torch {torch.__version__}. Load average "
            f"when the exports started: {load[0]:.1f} (1 min); the machine was shared, so these are upper bounds.",
        ]
    lines += ["", *SPEED_SECTION]
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "transformers_zoo.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
