"""parity (`segedge verify`): does the deployed file give the same masks as PyTorch or as another file."""

from segedge.parity.run import VerifyRequest, VerifyResult, run_verify

__all__ = ["VerifyRequest", "VerifyResult", "run_verify"]
