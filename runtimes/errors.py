"""The one error hierarchy of segedge, shared by `runtimes`, `exporters` and `segedge`.

Library code raises these; only the CLI boundary turns them into a line on stderr and an exit
code. `exit_code` follows the convention of command-line tools: 2 for a usage mistake (the
command line itself is wrong), 1 for anything that went wrong while doing the work.
"""

from __future__ import annotations


class SegedgeError(Exception):
    """Base class: a failure segedge can explain in one line."""

    exit_code = 1


class UsageError(SegedgeError):
    """The request itself is malformed: bad option value, unknown model name, bad keyword."""

    exit_code = 2


class InputFileError(SegedgeError):
    """A file the user named is missing, unreadable or not what it claims to be."""


class ImageError(InputFileError):
    """An image cannot be decoded (corrupt, not an image, over the decompression-bomb limit)."""


class VideoError(InputFileError):
    """A video file or stream cannot be opened or decoded (corrupt, truncated, unknown codec, dropped)."""


class ModelFileError(InputFileError):
    """An ONNX file cannot be loaded or is not a segmentation model segedge can run."""


class CheckpointError(InputFileError):
    """A checkpoint cannot be loaded safely or does not fit the model."""


class CardError(SegedgeError):
    """The model card is missing a field that is needed, or holds an invalid value."""


class ProviderError(SegedgeError):
    """A requested execution provider is not available or not active after session creation."""


class ExportError(SegedgeError):
    """PyTorch -> ONNX conversion, simplification or quantization failed."""


class ParityError(SegedgeError):
    """A verification check failed: the ONNX model does not match its reference."""


class OutputError(SegedgeError):
    """An output file cannot be written (read-only folder, full disk, path is a directory)."""


class BrowserError(SegedgeError):
    """Headless Chromium (the browser rows run in it) is not installed, or its page failed or timed out."""
