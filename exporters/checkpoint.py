"""Loading a checkpoint safely and fitting it to a model, with errors a person can act on.

`torch.load(..., weights_only=True)` always, with no fallback: a checkpoint from the internet
must never run code. Training checkpoints that wrap the weights, however deep (`{"state_dict":
...}`, `{"model": ...}`, `{"ema": {"module": ...}}`), are unwrapped, the trained weights preferred
to their moving average; keys that all carry one prefix the model does not have (`module.` from
DataParallel, `model.` from Lightning) are stripped with a note, and a prefix the model has but
the checkpoint lacks is added; torchvision's auxiliary-head keys are ignored with a note; a model
with an `adapt_checkpoint` method maps foreign key names first. Anything else that does not fit
is refused with one line naming the fix.
"""

from __future__ import annotations

import os
import pickle
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from runtimes.errors import CheckpointError
from runtimes.backends.messages import runtime_reason

# Where training frameworks keep the weights in a checkpoint, the most usual first (Lightning and
# mmseg: state_dict; torchvision's references and detectron2: model; ...). A moving average of the
# weights (timm, mmseg's EMA hook) is taken only when the trained weights are not there too.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network", "module", "weights", "params")
_EMA_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict", "ema")
_MAX_DEPTH = 4
# Heads used only in training; segedge exports the main logits, so their weights are not needed.
IGNORED_PREFIXES = ("aux_classifier.", "aux_head.", "auxiliary_head.")
# How torch's weights-only unpickler names a global it refused: "GLOBAL posix.system".
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_state_dict(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a state_dict from `path` without executing any pickled code (`.notes`: where it was)."""
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
        first = runtime_reason(exc)
        raise CheckpointError(f"checkpoint {path} cannot be read (truncated or not a PyTorch file): {first[:200]}") from None
    return _unwrap(obj, path)


class Checkpoint(dict[str, torch.Tensor]):
    """A state_dict as read from a file, with notes on where in the file it was found."""

    notes: tuple[str, ...] = ()


def _unwrap(obj: object, path: Path) -> Checkpoint:
    trail: list[str] = []
    unused_ema: list[str] = []
    while isinstance(obj, dict) and obj and not _is_state_dict(obj) and len(trail) < _MAX_DEPTH:
        present = [k for k in (*_WRAPPER_KEYS, *_EMA_KEYS) if isinstance(obj.get(k), dict) and obj[k]]
        if not present:
            break
        trail.append(present[0])
        unused_ema += [k for k in present[1:] if k in _EMA_KEYS]
        obj = obj[present[0]]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"checkpoint {path} holds no state_dict (found {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        nested = [str(k) for k, v in obj.items() if isinstance(v, dict) and v]
        if nested:
            raise CheckpointError(
                f"checkpoint {path} keeps its weights under none of the keys segedge knows "
                f"({', '.join(_WRAPPER_KEYS + _EMA_KEYS)}) but under {', '.join(map(repr, nested[:4]))}: "
                f"save the one you mean alone, e.g. torch.save(checkpoint[{nested[0]!r}], 'weights.pt')"
            )
        raise CheckpointError(f"checkpoint {path} is not a state_dict: entry {bad[0]!r} is not a tensor")
    state = Checkpoint(obj)
    if trail:
        where = "checkpoint" + "".join(f"[{k!r}]" for k in trail)
        ema = " (their moving average: the file holds no other weights)" if trail[-1] in _EMA_KEYS else ""
        if unused_ema:
            ema = f" (not their moving average, {unused_ema[0]!r}: save that alone to export it)"
        state.notes = (f"loaded the weights at {where}{ema}",)
    return state


def _is_state_dict(obj: dict) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], model_name: str = "model") -> list[str]:
    """Load `state` into `model` strictly; return notes, raise `CheckpointError` on any mismatch.

    The keys as they are first; when they do not fit, with one uniform prefix stripped from every
    key (or the model's own uniform prefix added): that is taken only when it fits exactly.
    """
    expected = model.state_dict()
    notes = list(getattr(state, "notes", ()))
    fitted = _fit_keys(model, dict(state), expected)
    if fitted.mismatch is not None:
        renamed = next((r for r in _prefix_renames(model, state, expected) if r[1].mismatch is None), None)
        if renamed is None:
            raise CheckpointError(_key_mismatch(model_name, *fitted.mismatch, _prefix_hint(state, expected)))
        notes.append(renamed[0])
        fitted = renamed[1]
    notes.extend(fitted.notes)
    for key, tensor in fitted.state.items():
        if tensor.shape != expected[key].shape:
            hint = " (wrong class count? set --num-classes)" if key in _last_layer_keys(expected) else ""
            raise CheckpointError(
                f"checkpoint does not fit {model_name}: {key} has shape {list(tensor.shape)} in the "
                f"checkpoint but {list(expected[key].shape)} in the model{hint}"
            )
    model.load_state_dict(fitted.state, strict=True)
    return notes


@dataclass(frozen=True)
class _Fitted:
    state: dict[str, torch.Tensor]
    notes: list[str]
    mismatch: tuple[list[str], list[str]] | None  # (missing, unexpected) keys; None when they fit


def _fit_keys(model: nn.Module, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> _Fitted:
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
    return _Fitted(state, notes, (missing, unexpected) if missing or unexpected else None)


def _prefix_renames(model: nn.Module, state: dict[str, torch.Tensor],
                    expected: dict[str, torch.Tensor]) -> Iterator[tuple[str, _Fitted]]:
    """(note, fitted) with a uniform prefix stripped from the checkpoint's keys, or the model's added."""
    for prefix in _common_prefixes(list(state)):
        stripped = {k[len(prefix):]: v for k, v in state.items()}
        yield (f"stripped the prefix '{prefix}' from every checkpoint key{_who(prefix)}",
               _fit_keys(model, stripped, expected))
    for prefix in _common_prefixes(list(expected)):
        yield (f"added the prefix '{prefix}' to every checkpoint key (the model keeps these weights under it)",
               _fit_keys(model, {prefix + k: v for k, v in state.items()}, expected))


def _common_prefixes(keys: list[str]) -> list[str]:
    """The dotted prefixes all `keys` share, shortest first: ['model.', 'model.net.'] for model.net.*."""
    parts = [k.split(".")[:-1] for k in keys]  # a key's last part is never a prefix
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return [".".join(common[: i + 1]) + "." for i in range(len(common))]


def _who(prefix: str) -> str:
    first = prefix.split(".")[0]
    return {"module": " (saved from DataParallel / DistributedDataParallel)",
            "model": " (a training framework's wrapper, e.g. Lightning)",
            "_orig_mod": " (saved from a torch.compile'd model)"}.get(first, "")


def _prefix_hint(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str:
    """Names the prefix most keys carry when stripping it from them would fit the model."""
    firsts = Counter(k.split(".")[0] for k in state if "." in k)
    if not firsts:
        return ""
    first, count = firsts.most_common(1)[0]
    prefix = first + "."
    inner = {k[len(prefix):] for k in state if k.startswith(prefix)}
    if first in {k.split(".")[0] for k in expected} or not inner & set(expected):
        return ""
    if set(expected) <= inner:
        others = [k for k in state if not k.startswith(prefix)]
        return (f"; the weights under '{prefix}' fit once that prefix is stripped, but {len(others)} other keys "
                f"({', '.join(others[:3])}) do not: save the inner model's state_dict() alone")
    return f"; {count} keys carry a '{prefix}' prefix, which does not make them fit either"


def _key_mismatch(model_name: str, missing: list[str], unexpected: list[str], hint: str = "") -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})")
    return f"checkpoint does not fit {model_name}: {'; '.join(parts)}{hint}"


def _last_layer_keys(expected: dict[str, torch.Tensor]) -> set[str]:
    """Keys of the last parameterised layer: where a class-count mismatch shows."""
    names = [k for k in expected if k.endswith(".weight") or k.endswith(".bias")]
    if not names:
        return set()
    prefix = names[-1].rsplit(".", 1)[0]
    return {f"{prefix}.weight", f"{prefix}.bias"}
