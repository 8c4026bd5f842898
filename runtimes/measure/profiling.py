"""Profiling one run of a model to see where each node ran and for how long (`--profile`, `--strict`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..guards.fileio import work_folder
from ..model.node_placement import NodePlacement, placement_from_records, read_profile
from ..backends.onnxruntime_providers import Provider, ProviderOptions
from ..backends.onnxruntime_session import open_session, session_options


def profile_placement(
    path: str | os.PathLike[str],
    provider: Provider | str,
    x: np.ndarray,
    threads: int | None = None,
    options: ProviderOptions = ProviderOptions(),
    runs: int = 3,
) -> NodePlacement:
    """Open a profiled session of its own (profiling slows timed runs), run `x`, read the profile."""
    with work_folder("segedge-profile-") as workdir:
        opts = session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(workdir) / "ort")
        session = open_session(path, provider, threads, options, sess_options=opts)
        for _ in range(runs):
            session.run(x)
        profile = session.session.end_profiling()
        records = read_profile(profile)
    return placement_from_records(records, session.provider)
