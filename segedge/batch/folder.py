"""`segedge predict` on images, overlapped: image i+1 is read while the model runs on image i.

The same stages as a video's (`runtimes.stream.labelling`): read + prepare, model, labels, each in
a thread; this module's consumer writes each image's PNGs (`jobs.write_pngs`, what `segment`
writes) as its labels arrive, in the jobs' order. An image that cannot be read is reported and
skipped, as on the sequential path. `--proba` keeps the sequential path (`jobs.segment`): its
probabilities stream into a memory-mapped file image by image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runtimes.errors import ImageError
from runtimes.predictor import Predictor
from runtimes.stream.labelling import label_stream

from segedge.batch.jobs import output_stem, read_image, write_pngs

Job = tuple[Path, Path]  # (image file, its path relative to the output folder)


def segment_overlapped(predictor: Predictor, jobs: list[Job], output_dir: Path, overlay: bool,
                       done: Callable[[Job, ImageError | None], None]) -> int:
    """Segment every job's image; call `done(job, error)` after each; return how many failed."""
    colors = predictor.card.colors()
    failed = 0
    stream = label_stream(predictor, ((job, job[0]) for job in jobs),
                          read=lambda source: read_image(source, predictor.max_pixels), skip_unreadable=True)
    for item in stream:
        if item.error is None:
            assert item.rgb is not None and item.labels is not None
            write_pngs(output_stem(output_dir, item.tag[1]), item.rgb, item.labels, colors, overlay)
        else:
            failed += 1
        done(item.tag, item.error)
    return failed
