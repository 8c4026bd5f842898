"""What `segedge predict` may write, checked before the model is even loaded (issue 15).

`predict photos/ -o photos/` wrote NAME_mask.png beside each photo: over the user's own
`a_mask.png`, and into a folder whose next run reads the masks as photos (`a_mask_mask.png`).
An output folder whose outputs a scan of an input folder would find (or an input glob pattern
match) is refused; so is any output that is an input image or the model, and an existing file
segedge did not write (unless `--overwrite`, `runtimes.guards.outputs`). Nothing here imports torch or ray.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from runtimes.errors import UsageError
from runtimes.guards.outputs import check_outputs, inputs_of, would_be_read
from segedge.batch.jobs import image_extensions, is_pattern, output_paths, output_stem


def check_predict_outputs(model: Path, inputs: list[Path], jobs: list[tuple[Path, Path]], output_dir: Path,
                          recursive: bool, overlay: bool, proba: bool, overwrite: bool) -> None:
    """Refuse, in one line, outputs that predict would read (now or next time), or that clash with a file."""
    written = [path for _, relative in jobs for path in output_paths(output_stem(output_dir, relative), overlay, proba)]
    extensions = image_extensions()
    for given in inputs:
        read_back = next((path for path in written if _reads(given, path, recursive, extensions)), None)
        if read_back is not None:
            where = "written into" if given.is_dir() else "matched by"
            raise UsageError(f"the output {read_back} would be {where} {given}, which predict reads images from "
                             "(its masks would be read as images next time); choose an output folder outside it")
    check_outputs(written, [("the model", model), *inputs_of("an input image", [source for source, _ in jobs])],
                  overwrite=overwrite)


def _reads(given: Path, output: Path, recursive: bool, extensions: set[str]) -> bool:
    """Whether a later `predict` of `given` (a folder or a glob pattern) would read `output` as an image."""
    if given.is_dir():
        return would_be_read(output, given, recursive, extensions)
    if is_pattern(given):  # fnmatch's * also crosses folders: a little more than the pattern reads is refused
        return output.suffix.lower() in extensions and fnmatch.fnmatch(os.path.abspath(output), os.path.abspath(given))
    return False
