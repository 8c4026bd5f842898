"""bench (`segedge bench`): ONNX Runtime on a provider beside PyTorch, torch.compile and OpenVINO, timed in one run."""

from segedge.bench.run import BenchRequest, BenchResult, Peer, run_bench

__all__ = ["BenchRequest", "BenchResult", "Peer", "run_bench"]
