"""The segedge model zoo. Importing this package registers every builder."""

from . import deeplabv3plus  # noqa: F401  (registers builders)
from . import deeplabv2  # noqa: F401
from . import deeplabv3  # noqa: F401
from . import pspnet  # noqa: F401
from . import upernet  # noqa: F401
from . import mobilenetv3_seg  # noqa: F401
from . import deeplabv3plus_mobilenet  # noqa: F401
from . import deeplabv3plus_xception  # noqa: F401
from . import fcn  # noqa: F401
from . import deeplabv1  # noqa: F401
from . import unet  # noqa: F401
from . import hrnet_ocr  # noqa: F401
from . import swin_upernet  # noqa: F401
from . import segformer  # noqa: F401
from .registry import ModelSpec, build_model, get_spec, list_models, register_model, resolve_name

__all__ = ["ModelSpec", "build_model", "get_spec", "list_models", "register_model", "resolve_name"]
