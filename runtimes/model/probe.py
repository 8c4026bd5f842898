"""Child side of `runtimes.guards.isolate.probe_model`: open a model and run it once.

    python -m runtimes.model.probe MODEL.onnx PROVIDER H W [MEMORY_MB]

Exit 0 when it worked; otherwise one line `segedge: error: ...` on stderr and exit 1 (or the
signal that killed the process, which is what the parent is there to catch).
"""

from __future__ import annotations

import sys

import numpy as np

from ..errors import SegedgeError
from ..backends.messages import runtime_reason
from ..backends.onnxruntime_session import open_session


def main(argv: list[str]) -> int:
    path, provider, h, w = argv[:4]
    if len(argv) > 4:
        limit_memory(int(argv[4]))
    try:
        session = open_session(path, provider, threads=1)
        session.run(np.zeros(_probe_shape(session, int(h), int(w)), np.float32))
    except SegedgeError as exc:
        sys.stderr.write(f"segedge: error: {exc}\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - the runtime's own failures, reported to the parent
        sys.stderr.write(f"segedge: error: {type(exc).__name__}: {runtime_reason(exc)}\n")
        return 1
    return 0


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space, so that a runaway allocation fails here, not in the parent."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    limit = memory_mb * 2**20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _probe_shape(session, h: int, w: int) -> tuple[int, ...]:
    """The N x 3 x H x W batch to run (`session.run` takes NCHW whatever the model's layout): the input's
    declared sizes where they are fixed (a static export, a fixed batch), `h` x `w` elsewhere."""
    declared = list(session.session.get_inputs()[0].shape)
    if session.card.layout == "NHWC":
        declared = [declared[0], declared[3], declared[1], declared[2]]
    wanted = (1, 3, h, w)
    return tuple(d if isinstance(d, int) and d > 0 else default for d, default in zip(declared, wanted))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
