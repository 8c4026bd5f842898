"""evaluate (`segedge eval`): mIoU, pixel accuracy and per-class IoU on a labelled folder, models side by side."""

from segedge.evaluate.run import Accuracy, EvalRequest, EvalResult, evaluate, onnx_labeller, run_eval, torch_labeller

__all__ = ["Accuracy", "EvalRequest", "EvalResult", "evaluate", "onnx_labeller", "run_eval", "torch_labeller"]
