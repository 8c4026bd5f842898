"""segedge: classic semantic-segmentation networks, from PyTorch to a verified, fast ONNX file."""

__version__ = "0.1.0"
