"""segedge's runtime side: everything an app needs to run an exported model, without torch."""

from .imaging.image import load_image
from .predictor import Predictor

__all__ = ["Predictor", "load_image"]
