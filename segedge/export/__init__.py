"""export (`segedge export`): a zoo or user model to one verified, simplified ONNX file with its card."""

from segedge.export.run import ExportRequest, ExportResult, run_export

__all__ = ["ExportRequest", "ExportResult", "run_export"]
