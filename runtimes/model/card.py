"""The model card: the one contract between export time and run time.

Written as JSON into the ONNX file's `metadata_props` under `CARD_KEY` at export, read back by
`Predictor`. A model exported elsewhere has no card; every field can then be given in code or on
the command line (`ModelCard.for_foreign_model` + `dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import CardError
from ..imaging.palette import Color, default_class_names, voc_palette
from .precision import Precision, scheme_of

CARD_KEY = "segedge.card"
# The edge-target record (exporters.targets): for which target a file was made, its input shape.
TARGET_KEY = "segedge.target"
CARD_VERSION = 1

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# What the model's output holds. "logits" and "probabilities" (a softmax already applied): C
# channels, one per class. "sigmoid" (a probability) and "logit": one channel, the foreground of a
# binary mask. "labels": class indices (an ArgMax inside the graph), N x H x W or N x 1 x H x W.
OutputKind = Literal["logits", "probabilities", "sigmoid", "logit", "labels"]
ColorOrder = Literal["RGB", "BGR"]
Layout = Literal["NCHW", "NHWC"]
# What a static model does with an image larger than its input: cut it into tiles of the input's
# size ("tile": right for models that judge pixels by their neighbourhood, e.g. scene parsing, text),
# or shrink it to fit ("resize": right for models that judge the whole image, e.g. salient-object
# or background removal, whose tiles would each see a part as if it were the whole).
LargeImage = Literal["tile", "resize"]

# Bounds on the sizes a card may state (pixels).
MAX_SIDE = 16384
MAX_DIVISOR = 1024
MAX_MARGIN = 4096
MAX_BATCH = 4096

_OUTPUT_KINDS = ("logits", "probabilities", "sigmoid", "logit", "labels")
_COLOR_ORDERS = ("RGB", "BGR")
_LAYOUTS = ("NCHW", "NHWC")
_LARGE_IMAGE = ("tile", "resize")


@dataclass(frozen=True)
class ModelCard:
    """What a runtime must know to feed a segmentation model and read its output.

    Normalisation: `x = (pixel * scale - mean) / std`, per channel, in `color_order`.
    `layout`: the image input's layout, NCHW or NHWC.
    `output_layout`: the output's layout when it differs from the input's (a channels-last output of
    an NCHW network, CRAFT's N x H/2 x W/2 x 2); None: the same as `layout`.
    `batch`: the batch a model takes when its graph fixes it (N = 1), else None (any batch).
    `large_image`: what a static model does with a larger image: "tile" or "resize" (`LargeImage`).
    `graph_precision`: the precision read from the graph (`runtimes.model.precision.read_precision`'s scheme,
    e.g. "fp16 inside, fp32 I/O", "int8 dynamic"), where the card was not written by segedge's exporter.
    `dynamic`: H and W (and N) may vary; a static model takes exactly `input_size` (and its batch).
    `size_divisor`: input H and W are padded to a multiple of it.
    `valid_margin`: pixels lost on each border (U-Net without padding); 0 for "same" models.
    `output_stride`: the output is 1/output_stride of the input (SegFormer's logits: 4); the
    Predictor upsamples it bilinearly to the input size before labelling.
    `output_kind`: see `OutputKind`.
    `output_key`: which entry of the PyTorch model's output holds the logits (a dict key such as
    torchvision's "out", a tuple index), when segedge's default choice was overridden; the PyTorch
    reference is rebuilt with it.
    """

    name: str
    architecture: str = "unknown"
    source: str = ""
    build_kwargs: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    palette: tuple[Color, ...] = ()
    color_order: ColorOrder = "RGB"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale: float = 1.0 / 255.0
    layout: Layout = "NCHW"
    output_layout: Layout | None = None
    batch: int | None = None
    large_image: LargeImage = "tile"
    input_name: str = "image"
    output_name: str = "logits"
    input_size: tuple[int, int] = (512, 512)
    dynamic: bool = True
    size_divisor: int = 1
    valid_margin: int = 0
    output_stride: int = 1
    output_kind: OutputKind = "logits"
    output_key: str | None = None
    threshold: float = 0.5  # foreground probability above which a one-channel model's pixel is labelled 1
    tile_size: int | None = None
    tile_overlap: int = 0
    precision: Precision = Precision.fp32
    graph_precision: str | None = None
    opset: int | None = None
    exporter: str | None = None
    segedge_version: str | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    # How the weights were made when segedge made them (`--weights demo`): recipe key, dataset and
    # its splits, held-out mIoU. Empty for weights segedge did not train; older cards have none.
    training: dict[str, Any] = field(default_factory=dict)
    # The runtime a quantized file was made for ("onnxruntime": ORT's QDQ quantizer; "openvino":
    # NNCF's), so the other one can say so; None: any runtime (fp32, fp16, older cards).
    runtime: str | None = None
    card_version: int = CARD_VERSION

    def __post_init__(self) -> None:
        _validate(self)
        # JSON and callers give the precision as a string; the card holds the enum.
        object.__setattr__(self, "precision", Precision(self.precision))

    @property
    def precision_label(self) -> str:
        """The precision rows are labelled with: the graph's scheme where it was read ("fp16 inside, fp32 I/O",
        "int8 dynamic"), else the card's precision."""
        return scheme_of(self.graph_precision) if self.graph_precision else self.precision.value

    @property
    def num_classes(self) -> int:
        """Classes the label map can hold (2 for a one-channel binary model)."""
        return len(self.classes)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("classes", "palette", "mean", "std", "input_size"):
            out[key] = _to_lists(out[key])
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        if not isinstance(data, dict):
            raise CardError("model card is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        # Fields added by a newer segedge are ignored so old runtimes keep reading new cards.
        kwargs = {k: v for k, v in data.items() if k in known}
        if "name" not in kwargs:
            raise CardError("model card has no 'name'")
        try:
            for key in ("classes", "mean", "std", "input_size"):
                if key in kwargs:
                    kwargs[key] = tuple(kwargs[key])
            if "palette" in kwargs:
                kwargs["palette"] = tuple(tuple(int(c) for c in rgb) for rgb in kwargs["palette"])
            return cls(**kwargs)
        except CardError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf) in a palette
            raise CardError(f"invalid model card: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CardError(f"model card is not valid JSON: {exc}") from None
        except RecursionError:
            raise CardError("model card is not valid JSON: nested too deeply") from None
        return cls.from_dict(data)

    @classmethod
    def for_foreign_model(cls, name: str, num_classes: int, **fields: Any) -> ModelCard:
        """A card for an ONNX file exported elsewhere; `fields` override the defaults."""
        fields.setdefault("classes", default_class_names(num_classes))
        return cls(name=name, **fields)

    def with_overrides(self, **fields: Any) -> ModelCard:
        """A copy with the given fields replaced (None values are ignored)."""
        given = {k: v for k, v in fields.items() if v is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise CardError(f"unknown model card field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **given)

    def colors(self) -> tuple[Color, ...]:
        """The palette, completed with the VOC colour map when shorter than the class list."""
        n = max(self.num_classes, 2)
        if len(self.palette) >= n:
            return self.palette
        return tuple(self.palette) + voc_palette(256)[len(self.palette) : max(n, 256)]


def _to_lists(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_to_lists(v) for v in value]
    return value


def _validate(card: ModelCard) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise CardError(f"invalid model card: {message}")

    need(isinstance(card.name, str) and card.name != "", "'name' must be a non-empty string")
    need(all(isinstance(c, str) for c in card.classes), "'classes' must be strings")
    need(card.color_order in _COLOR_ORDERS, f"'color_order' must be one of {_COLOR_ORDERS}")
    need(card.output_kind in _OUTPUT_KINDS, f"'output_kind' must be one of {_OUTPUT_KINDS}")
    need(card.precision in tuple(Precision), f"'precision' must be one of {', '.join(p.value for p in Precision)}")
    for key in ("mean", "std"):
        values = getattr(card, key)
        need(
            len(values) == 3 and all(_is_finite(v) for v in values),
            f"'{key}' must be three finite numbers",
        )
    need(all(v != 0 for v in card.std), "'std' must not contain 0")
    need(_is_finite(card.scale) and card.scale > 0, "'scale' must be > 0")
    need(_is_finite(card.threshold) and 0 <= card.threshold <= 1, "'threshold' must lie in 0..1")
    # Upper bounds too: a hostile card (say a size divisor of 10^9) would make the predictor pad
    # every image to a size no machine holds. Real models stay far below them.
    need(
        len(card.input_size) == 2 and all(_is_int(v) and 0 < v <= MAX_SIDE for v in card.input_size),
        f"'input_size' must be two integers in 1..{MAX_SIDE}",
    )
    need(_is_int(card.size_divisor) and 1 <= card.size_divisor <= MAX_DIVISOR, f"'size_divisor' must be in 1..{MAX_DIVISOR}")
    need(_is_int(card.valid_margin) and 0 <= card.valid_margin <= MAX_MARGIN, f"'valid_margin' must be in 0..{MAX_MARGIN}")
    need(card.tile_size is None or (_is_int(card.tile_size) and 0 < card.tile_size <= MAX_SIDE),
         f"'tile_size' must be in 1..{MAX_SIDE}")
    need(_is_int(card.tile_overlap) and 0 <= card.tile_overlap <= MAX_SIDE, f"'tile_overlap' must be in 0..{MAX_SIDE}")
    need(
        all(len(rgb) == 3 and all(_is_int(c) and 0 <= c <= 255 for c in rgb) for rgb in card.palette),
        "'palette' must hold RGB triples in 0..255",
    )
    need(isinstance(card.build_kwargs, dict), "'build_kwargs' must be an object")
    need(isinstance(card.parity, dict), "'parity' must be an object")
    need(isinstance(card.calibration, dict), "'calibration' must be an object")
    need(isinstance(card.training, dict), "'training' must be an object")
    need(card.runtime is None or (isinstance(card.runtime, str) and card.runtime != ""),
         "'runtime' must be a runtime's name or null")
    need(card.output_key is None or isinstance(card.output_key, str), "'output_key' must be a string")
    need(card.layout in _LAYOUTS, f"'layout' must be one of {_LAYOUTS}")
    need(card.output_layout is None or card.output_layout in _LAYOUTS, f"'output_layout' must be one of {_LAYOUTS} or null")
    need(card.batch is None or (_is_int(card.batch) and 1 <= card.batch <= MAX_BATCH), f"'batch' must be in 1..{MAX_BATCH} or null")
    need(card.large_image in _LARGE_IMAGE, f"'large_image' must be one of {_LARGE_IMAGE}")
    need(card.graph_precision is None or isinstance(card.graph_precision, str), "'graph_precision' must be a string")
    need(_is_int(card.output_stride) and 1 <= card.output_stride <= MAX_DIVISOR,
         f"'output_stride' must be in 1..{MAX_DIVISOR}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_finite(v: Any) -> bool:
    try:
        return _is_number(v) and math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
