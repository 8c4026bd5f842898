"""quantize (`segedge quantize`): fp32 to fp16 or int8, with what it costs in masks and mIoU measured and recorded."""

from segedge.quantize.request import AUTO, QuantizeRequest
from segedge.quantize.run import QuantizeResult, run_quantize

__all__ = ["AUTO", "QuantizeRequest", "QuantizeResult", "run_quantize"]
