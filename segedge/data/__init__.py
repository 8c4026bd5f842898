"""Datasets segedge can make itself: a reproducible synthetic set for training, tests and benchmarks."""

from segedge.data.shapes import (
    CLASSES,
    IGNORE_INDEX,
    LATEST,
    ShapesConfig,
    classes_of,
    write_shapes_dataset,
)

__all__ = ["CLASSES", "IGNORE_INDEX", "LATEST", "ShapesConfig", "classes_of", "write_shapes_dataset"]
