"""What `segedge predict` may write, checked before the model is even loaded (issue 15).

`predict photos/ -o photos/` wrote NAME_mask.png beside each photo: over the user's own
`a_mask.png`, and into a folder whose next run reads the masks as photos (`a_mask_mask.png`).
An output folder whose outputs a scan of an input folder would find is refused; so is any output
that is an input image or the model, and an existing file segedge did not write (unless
`--overwrite`, `runtimes.guards.outputs`). Nothing here imports torch or ray.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from runtimes.errors import UsageError
from runtimes.guards.outputs import check_outputs, inputs_of, would_be_read
from segedge.batch.jobs import output_paths, output_stem


def check_predict_outputs(model: Path, inputs: list[Path], jobs: list[tuple[Path, Path]], output_dir: Path,
                          recursive: bool, overlay: bool, proba: bool, overwrite: bool) -> None:
    """Refuse, in one line, outputs that predict would read (now or next time), or that clash with a file."""
    written = [path for _, relative in jobs for path in output_paths(output_stem(output_dir, relative), overlay, proba)]
    extensions = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    for folder in (given for given in inputs if given.is_dir()):
        read_back = next((path for path in written if would_be_read(path, folder, recursive, extensions)), None)
        if read_back is not None:
            raise UsageError(f"the output {read_back} would be written into {folder}, which predict reads images from "
                             "(its masks would be read as images next time); choose an output folder outside it")
    check_outputs(written, [("the model", model), *inputs_of("an input image", [source for source, _ in jobs])],
                  overwrite=overwrite)
