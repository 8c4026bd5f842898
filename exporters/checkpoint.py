"""Loading a checkpoint safely and fitting it to a model, with errors a person can act on.

`torch.load(..., weights_only=True)` always, with no fallback: a checkpoint from the internet
must never run code. Training checkpoints that wrap the weights (`{"state_dict": ...}`,
`{"model": ...}`) are unwrapped; torchvision's auxiliary-head keys are ignored with a note; a
model with an `adapt_checkpoint` method maps foreign key names first.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from runtimes.errors import CheckpointError

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
# Heads used only in training; segedge exports the main logits, so their weights are not needed.
IGNORED_PREFIXES = ("aux_classifier.", "aux_head.", "auxiliary_head.")
# How torch's weights-only unpickler names a global it refused: "GLOBAL posix.system".
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state_dict from `path` without executing any pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}" if not path.exists() else f"checkpoint is not a file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses the globals it does not know (a pickled nn.Module, a payload's
        # os.system) and the opcodes it does not read (bytes that are no checkpoint at all).
        found = _REFUSED_GLOBAL.search(str(exc))
        if found is None:
            raise CheckpointError(f"checkpoint {path} cannot be read (truncated or not a PyTorch file)") from None
        raise CheckpointError(
            f"checkpoint {path} holds pickled Python objects, which segedge will not execute "
            f"(save model.state_dict() instead): it refers to {found.group(1)[:120]}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on bad bytes; all mean "unreadable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} cannot be read (truncated or not a PyTorch file): {first[:200]}") from None
    return _unwrap(obj, path)


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"checkpoint {path} holds no state_dict (found {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint {path} is not a state_dict: entry {bad[0]!r} is not a tensor")
    return obj


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], model_name: str = "model") -> list[str]:
    """Load `state` into `model` strictly; return notes, raise `CheckpointError` on any mismatch."""
    expected = model.state_dict()
    notes = []
    # A model that knows another library's key names (segedge's SegFormer: Hugging Face's)
    # renames them itself: `adapt_checkpoint(state) -> (state, notes)`.
    adapt = getattr(model, "adapt_checkpoint", None)
    if callable(adapt):
        state, adapt_notes = adapt(state)
        notes.extend(adapt_notes)
    ignored = [k for k in state if k.startswith(IGNORED_PREFIXES) and k not in expected]
    if ignored:
        state = {k: v for k, v in state.items() if k not in set(ignored)}
        prefixes = sorted({k.split(".")[0] + ".*" for k in ignored})
        notes.append(f"ignored {len(ignored)} auxiliary-head keys ({', '.join(prefixes)}): the auxiliary head is not exported")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(_key_mismatch(model_name, missing, unexpected))
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            hint = " (wrong class count? set --num-classes)" if key in _last_layer_keys(expected) else ""
            raise CheckpointError(
                f"checkpoint does not fit {model_name}: {key} has shape {list(tensor.shape)} in the "
                f"checkpoint but {list(expected[key].shape)} in the model{hint}"
            )
    model.load_state_dict(state, strict=True)
    return notes


def _key_mismatch(model_name: str, missing: list[str], unexpected: list[str]) -> str:
    if missing and unexpected and all(k.startswith("module.") for k in unexpected):
        stripped = {k[len("module."):] for k in unexpected}
        if set(missing) <= stripped:
            return (
                f"checkpoint does not fit {model_name}: its keys carry a 'module.' prefix "
                "(saved from DataParallel); save model.module.state_dict() instead"
            )
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})")
    return f"checkpoint does not fit {model_name}: {'; '.join(parts)}"


def _last_layer_keys(expected: dict[str, torch.Tensor]) -> set[str]:
    """Keys of the last parameterised layer: where a class-count mismatch shows."""
    names = [k for k in expected if k.endswith(".weight") or k.endswith(".bias")]
    if not names:
        return set()
    prefix = names[-1].rsplit(".", 1)[0]
    return {f"{prefix}.weight", f"{prefix}.bias"}
