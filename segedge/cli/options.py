"""The options every command shares, declared once (Polygraphy's argument groups, in Typer's terms).

A command names a shared option by its type, `threads: Threads = None`, and gets the same flag,
bounds and help text as every other command. The card options, which describe a model exported
elsewhere, are one group: `@card_options` adds them all to a command, which receives them as one
`CardOptions` value (`card: CardOptions`), and `CardOptions.overrides()` is what the Predictor and
every library request take.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar, get_args

import typer

from runtimes.model.card import ColorOrder, LargeImage, Layout, OutputKind
from runtimes.errors import UsageError
from runtimes.model.precision import Precision
from runtimes.backends import Runtime, RuntimeSpec, backend_names
from runtimes.backends.onnxruntime_providers import Provider, ProviderOptions

from segedge.batch.cluster import RayCluster, require_ray

# -- choices derived from the one Precision enum ---------------------------------------------------
def _choices(name: str, values: list[str]) -> Any:
    return Enum(name, {v: v for v in values}, type=str)  # a functional Enum: Typer shows its members as the choices


ExportTo = _choices("ExportTo", [p.value for p in Precision] + ["auto"])  # export --precision


def _target_names() -> list[str]:
    from exporters.targets.table import target_names  # the table alone: no onnx, no quantizer

    return list(target_names())


TargetName = _choices("TargetName", _target_names())  # export --target
QuantizeTo = _choices("QuantizeTo", [p.value for p in Precision if p is not Precision.fp32] + ["auto"])

# -- one option each ---------------------------------------------------------------------------
Weights = Annotated[Optional[Path], typer.Option(
    "--weights", help="state_dict checkpoint for the PyTorch model (torch.load with weights_only=True), or `demo`: "
                      "the zoo model trained by segedge's own recipe on its synthetic shapes data (trained once, "
                      "minutes on a CPU, then cached in $SEGEDGE_CACHE); its data then comes along for --calib and --data.")]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", min=1, max=1024, help="Intra-op threads for every runtime alike (default: the CPUs this process may use).")]
ProviderOpt = Annotated[Provider, typer.Option(
    "--provider", help="ONNX Runtime execution provider; `auto` picks the best available and says which.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace existing files that segedge did not write, and (quantize) convert MODEL in place, "
                         "replacing it only once the result passes its preset. An input is never an output otherwise.")]
Isolate = Annotated[bool, typer.Option(
    "--isolate", help="For untrusted models: load the file and run it once in a child process under memory and "
                      "time limits first, so that a crash or an out-of-memory abort in the runtime becomes an error.")]
OutputKey = Annotated[Optional[str], typer.Option(
    "--output-key", help="Which entry of your model's output holds the logits: a dict key (torchvision's default "
                         "`out`; its `aux` is dropped), a Hugging Face output's field (default `logits`) or a tuple "
                         "index (default 0). Recorded in the card, so verify rebuilds the same reference.")]
Calib = Annotated[Optional[Path], typer.Option(
    "--calib", help="Folder of calibration images for int8: a few dozen typical photos (a VOC root: its train split).")]
Data = Annotated[Optional[Path], typer.Option(
    "--data", help="Labelled folder for mIoU: VOC layout (JPEGImages/ + SegmentationClass/, the val split) or images/ + masks/.")]
DataLimit = Annotated[Optional[int], typer.Option("--data-limit", min=1, help="Use only the first N labelled images.")]
Warmup = Annotated[int, typer.Option("--warmup", min=0, max=1000, help="Untimed runs before timing.")]
Runs = Annotated[int, typer.Option("--runs", min=1, max=100000, help="Timed runs per runtime, in interleaved rounds.")]
Budget = Annotated[float, typer.Option(
    "--budget", min=0, max=100, help="mIoU points (with labels), else argmax-agreement points, a faster row may lose.")]
OpenvinoHint = Annotated[Optional[str], typer.Option(
    "--openvino-hint", help="OpenVINO inference precision: f32, bf16 or f16 (default: OpenVINO's choice, bf16 on AMX CPUs).")]
RuntimeName = _choices("RuntimeName", list(backend_names()))  # every registered backend: a new one needs no edit here
RuntimeOpt = Annotated[Optional[RuntimeName], typer.Option(  # type: ignore[valid-type]
    "--runtime", help="What runs the model: onnxruntime (its --provider), or openvino: OpenVINO's own runtime "
                      "(pip install 'segedge\\[openvino]'; .onnx or IR .xml files; precision: --openvino-hint). "
                      "Default: the file's own, openvino for an IR .xml, onnxruntime for an .onnx file.")]
ForRuntime = Annotated[Runtime, typer.Option(
    "--for", help="The runtime the int8 file is made for: onnxruntime (its QDQ quantizer, an .onnx file) or openvino "
                  "(NNCF's post-training quantization, an OpenVINO IR .xml + .bin: what OpenVINO runs fastest).")]
PresetOpt = Annotated[Optional[Precision], typer.Option(
    "--preset", help="Tolerance preset (default: the card's precision).")]
Samples = Annotated[int, typer.Option(
    "--samples", min=0, max=64, help="Sample images per row on the HTML page: where its masks are most wrong, and a "
                                     "fixed few; 0: none.")]

# -- the engine: one process, or a Ray Data job (predict, eval) -----------------------------------
class Engine(str, Enum):
    local = "local"
    ray = "ray"


EngineOpt = Annotated[Engine, typer.Option(
    "--engine", help="local: this process; ray: a Ray Data job, one Predictor per actor, on a local Ray instance "
                     "or the cluster at --address (needs segedge\\[ray]).")]
Address = Annotated[Optional[str], typer.Option(
    "--address", help="With --engine ray: the Ray cluster to join, HOST:PORT of its head (`auto`: the one `ray start` "
                      "runs on this machine; `local`: a new local instance for this command). Default, as Ray's: "
                      "$RAY_ADDRESS, else a cluster `ray start` runs on this machine, else a local instance.")]
Workers = Annotated[Optional[int], typer.Option(
    "--workers", min=1, max=100000, help="With --engine ray: actors in the pool, each with its own Predictor "
                                         "(default: the cluster's CPUs / --threads-per-worker).")]
ThreadsPerWorker = Annotated[Optional[int], typer.Option(
    "--threads-per-worker", min=1, max=1024, help="With --engine ray: intra-op threads of each actor's Predictor, "
                                                  "and the CPUs it reserves (default 1).")]


def ray_cluster(engine: Engine, address: str | None, workers: int | None, threads_per_worker: int | None,
                threads: int | None) -> RayCluster | None:
    """Where `--engine ray` runs, or None for a local run; Ray's options refuse to go with a local one."""
    if engine is Engine.local:
        given = [flag for flag, value in (("--address", address), ("--workers", workers),
                                          ("--threads-per-worker", threads_per_worker)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} go with --engine ray")
        return None
    if threads is not None:
        raise UsageError("--threads is for --engine local; each Ray actor takes --threads-per-worker")
    require_ray()
    return RayCluster(address, workers, threads_per_worker or 1)


def calib_count_option(default_help: str = "") -> Any:
    from exporters.int8_options import DEFAULT_CALIB_COUNT  # light: no onnxruntime.quantization import

    return typer.Option(DEFAULT_CALIB_COUNT, "--calib-count", min=1, max=100000,
                        help="Calibration images to use (all of the folder's when it holds fewer, with a warning)." + default_help)


# -- the card group ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CardOptions:
    """What a model card says, given on the command line: for models exported elsewhere, or to override a card."""

    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    scale: float | None = None
    color_order: ColorOrder | None = None
    classes: tuple[str, ...] | None = None
    output_kind: OutputKind | None = None
    threshold: float | None = None
    size_divisor: int | None = None
    input_size: tuple[int, int] | None = None
    layout: Layout | None = None
    output_name: str | None = None
    output_layout: Layout | None = None
    large_image: LargeImage | None = None

    def overrides(self) -> dict[str, Any]:
        """The card fields that were given, as `Predictor(**overrides)` and `ModelCard.with_overrides` take them."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


_CARD_PARAMETERS = {
    "mean": Annotated[Optional[str], typer.Option(
        "--mean", help="Card: normalisation mean per channel, R,G,B in 0..1 units, e.g. 0.485,0.456,0.406.")],
    "std": Annotated[Optional[str], typer.Option(
        "--std", help="Card: normalisation std per channel, R,G,B in 0..1 units, e.g. 0.229,0.224,0.225.")],
    "scale": Annotated[Optional[float], typer.Option(
        "--scale", min=0, help="Card: factor from 0..255 pixels to the unit of mean/std (default 1/255).")],
    "color_order": Annotated[Optional[str], typer.Option(
        "--color-order", help="Card: channel order the model takes, RGB or BGR.")],
    "classes": Annotated[Optional[str], typer.Option("--classes", help="Card: comma-separated class names.")],
    "output_kind": Annotated[Optional[str], typer.Option(
        "--output-kind", help="Card: logits or probabilities (C channels), sigmoid (one channel, a probability), logit "
                              "(one channel) or labels (class indices: an ArgMax in the graph).")],
    "threshold": Annotated[Optional[float], typer.Option(
        "--threshold", min=0, max=1, help="Card: foreground probability above which a one-channel model's pixel is 1 "
                                          "(default 0.5).")],
    "size_divisor": Annotated[Optional[int], typer.Option(
        "--size-divisor", min=1, max=1024, help="Card: input sides must be multiples of this (the output stride).")],
    "input_size": Annotated[Optional[str], typer.Option(
        "--input-size", help="Card: the model's input size HxW: the export size, the size to time and check at, a "
                             "static model's only size (default: the card's, or the graph's).")],
    "layout": Annotated[Optional[str], typer.Option(
        "--layout", help="Card: the image input's layout, NCHW or NHWC (outputs follow it).")],
    "output_name": Annotated[Optional[str], typer.Option(
        "--output-name", help="Card: which output holds the segmentation, for models with several (default: the first).")],
    "output_layout": Annotated[Optional[str], typer.Option(
        "--output-layout", help="Card: the output's layout, NCHW or NHWC, where it differs from the input's (a "
                                "channels-last N x H x W x C output; default: read from the graph, else --layout's).")],
    "large_image": Annotated[Optional[str], typer.Option(
        "--large-image", help="Card: what a static model does with a larger image: tile (cut into tiles of its input "
                              "size: models that judge each pixel by its surroundings) or resize (shrunk to fit: models "
                              "that judge the whole image, e.g. background removal). Default: tile.")],
}


def _card_from_cli(values: dict[str, Any]) -> CardOptions:
    color = values["color_order"]
    if color is not None and color.upper() not in ("RGB", "BGR"):
        raise UsageError(f"--color-order must be RGB or BGR, got {color!r}")
    kind = values["output_kind"]
    kinds = get_args(OutputKind)
    if kind is not None and kind not in kinds:
        raise UsageError(f"--output-kind must be one of {', '.join(kinds)}, got {kind!r}")
    layout, output_layout = values["layout"], values["output_layout"]
    for flag, given in (("--layout", layout), ("--output-layout", output_layout)):
        if given is not None and given.upper() not in get_args(Layout):
            raise UsageError(f"{flag} must be NCHW or NHWC, got {given!r}")
    large = values["large_image"]
    if large is not None and large.lower() not in get_args(LargeImage):
        raise UsageError(f"--large-image must be tile or resize, got {large!r}")
    return CardOptions(
        mean=parse_triple(values["mean"], "--mean") if values["mean"] is not None else None,
        std=parse_triple(values["std"], "--std") if values["std"] is not None else None,
        scale=values["scale"],
        color_order=color.upper() if color is not None else None,
        classes=parse_list(values["classes"]),
        output_kind=kind,
        threshold=values["threshold"],
        size_divisor=values["size_divisor"],
        input_size=parse_optional_size(values["input_size"]),
        layout=layout.upper() if layout is not None else None,
        output_name=values["output_name"],
        output_layout=output_layout.upper() if output_layout is not None else None,
        large_image=large.lower() if large is not None else None,
    )


Command = TypeVar("Command", bound=Callable[..., Any])


def card_options(command: Command) -> Command:
    """Give `command` the card option group; it receives the values as `card: CardOptions`."""
    signature = inspect.signature(command, eval_str=True)  # real annotations: Typer reads `__signature__` as it is
    own = [p for p in signature.parameters.values() if p.name != "card"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
             for name, annotation in _CARD_PARAMETERS.items()]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        card = _card_from_cli({name: kwargs.pop(name) for name in _CARD_PARAMETERS})
        return command(card=card, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


# -- the runtime group: what runs the model, and how ------------------------------------------------
_RUNTIME_PARAMETERS: dict[str, tuple[Any, Any]] = {  # name -> (annotation, default)
    "runtime": (RuntimeOpt, None),
    "provider": (ProviderOpt, Provider.cpu),
    "threads": (Threads, None),
    "openvino_hint": (OpenvinoHint, None),
}
_PROVIDER_OPTION_PARAMETERS: dict[str, tuple[Any, Any]] = {  # ONNX Runtime's providers' own options (bench)
    "device_id": (Annotated[int, typer.Option(
        "--device-id", min=0, max=64, help="GPU index for cuda / tensorrt / directml.")], 0),
    "trt_fp16": (Annotated[bool, typer.Option("--trt-fp16", help="TensorRT: allow fp16 kernels.")], False),
    "trt_int8": (Annotated[bool, typer.Option("--trt-int8", help="TensorRT: allow int8 kernels (QDQ models).")], False),
    "trt_cache": (Annotated[Optional[Path], typer.Option(
        "--trt-cache", help="TensorRT: engine cache folder (reused between runs).")], None),
    "openvino_device": (Annotated[str, typer.Option(
        "--openvino-device", help="OpenVINO provider: CPU, GPU or NPU.")], "CPU"),
}


def runtime_options(*, runtime: bool = True, provider: bool = True, threads: bool = True,
                    provider_options: bool = False) -> Callable[[Command], Command]:
    """Give a command the runtime option group (--runtime, --provider, --threads, --openvino-hint, and with
    `provider_options` ONNX Runtime's provider options; `runtime`, `provider`, `threads` False leave those
    out); it receives them as one `spec: RuntimeSpec`."""
    left_out = {name for name, given in (("runtime", runtime), ("provider", provider), ("threads", threads)) if not given}
    wanted = {name: p for name, p in _RUNTIME_PARAMETERS.items() if name not in left_out}
    if provider_options:
        wanted.update(_PROVIDER_OPTION_PARAMETERS)

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "spec"]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                 for name, (annotation, default) in wanted.items()]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            return command(spec=_spec_from_cli({name: kwargs.pop(name) for name in wanted}), **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _spec_from_cli(values: dict[str, Any]) -> RuntimeSpec:
    runtime = values.get("runtime")
    options = ProviderOptions(device_id=values.get("device_id", 0), trt_fp16=values.get("trt_fp16", False),
                              trt_int8=values.get("trt_int8", False), trt_cache_dir=values.get("trt_cache"),
                              openvino_device=values.get("openvino_device", "CPU"))
    return RuntimeSpec(runtime.value if runtime is not None else None, values.get("provider", Provider.cpu), options,
                       values.get("threads"), values.get("openvino_hint"))


# -- parsing -----------------------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    """'512x384' -> (512, 384) as H x W; '512' -> (512, 512)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"size {text!r} must look like HxW, e.g. 512x512") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(1 <= v <= 16384 for v in values):
        raise UsageError(f"size {text!r} must be HxW with 1 <= H, W <= 16384")
    return values[0], values[1]


def parse_optional_size(text: str | None) -> tuple[int, int] | None:
    return None if text is None else parse_size(text)


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    sizes = tuple(parse_size(p) for p in text.split(",") if p.strip())
    if not sizes:
        raise UsageError(f"sizes {text!r} must be comma-separated HxW, e.g. 512x512,384x640")
    return sizes


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{what} {text!r} must be three numbers, e.g. 0.485,0.456,0.406") from None
    if len(values) != 3:
        raise UsageError(f"{what} {text!r} must be three comma-separated numbers")
    return values[0], values[1], values[2]


def parse_list(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(p.strip() for p in text.split(",") if p.strip())
