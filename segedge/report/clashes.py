"""What `segedge report` may write into its folder, checked before any work (issue 15).

The folder gets report.md, report.json, index.html, the plot and the models (`NAME_fp32.onnx`
when it exports, `NAME_<precision>.onnx`, NNCF's `NAME_int8.xml` + `.bin`, the LiteRT and ExecuTorch
files `NAME_<precision>.tflite` / `.pte`; those converted at the labelled images' size for mIoU are
checked as they are written). None of them may be
an input of the run (the ONNX file reported on, `--weights`, a calibration or labelled image),
and an existing file segedge did not write is replaced only with `--overwrite` (`runtimes.guards.outputs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runtimes.guards.outputs import REPORT_FILES, Input, check_outputs, inputs_of
from segedge.report.edge_rows import EDGE_RUNTIMES, edge_file

if TYPE_CHECKING:
    from segedge.report.run import ReportRequest


def check_report_outputs(request: ReportRequest, name: str) -> None:
    """`name`: the report's model name (`report_name(request.target)`), which the files are named after."""
    out, target = request.output, Path(request.target)
    given = target.suffix == ".onnx" or target.exists()  # as run_report decides: an ONNX file, else exported
    stem = (target.stem if given else name).removesuffix("_fp32")
    written = [out / file for file in REPORT_FILES]
    written += [] if given else [out / f"{name}_fp32.onnx"]
    written += [out / f"{stem}_{precision}.onnx" for precision in request.precisions if precision != "fp32"]
    if "int8" in request.precisions and "openvino" in request.runtimes:
        written += [out / f"{stem}_int8.xml", out / f"{stem}_int8.bin"]
    if "int8" in request.precisions:  # where plain int8 misses the budget (segedge.report.repaired)
        written += [out / f"{stem}_int8_repaired{suffix}" for suffix in (".onnx", ".xml", ".bin")]
        written += [out / "sensitivity.png"]
    written += [edge_file(out, stem, runtime, precision) for runtime in EDGE_RUNTIMES if runtime in request.runtimes
                for precision in ("fp32", "int8") if precision in request.precisions]
    if "int8" in request.precisions:  # where plain int8 misses the budget
        written += [edge_file(out, stem, runtime, "int8", repaired=True) for runtime in EDGE_RUNTIMES
                    if runtime in request.runtimes]
    check_outputs(written, _read(request, target if given else None), overwrite=request.overwrite)


def _read(request: ReportRequest, model: Path | None) -> list[Input]:
    read: list[Input] = [("the model reported on", model)] if model is not None else []
    read += inputs_of("--weights", [request.weights] if request.weights is not None else [])
    if request.calib is not None and request.calib.is_dir():
        from exporters.calibration import image_files

        read += inputs_of("a calibration image", image_files(request.calib, "calibration"))
    if request.data is not None and request.data.is_dir():
        from segedge.data.labelled import labelled_pairs

        pairs = labelled_pairs(request.data, request.data_limit)
        read += inputs_of("a labelled image", [i for i, _ in pairs]) + inputs_of("a label mask", [m for _, m in pairs])
    return read
