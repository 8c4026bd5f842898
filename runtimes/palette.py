"""Class names and colour palettes."""

from __future__ import annotations

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

Color = tuple[int, int, int]


def voc_palette(n: int = 256) -> tuple[Color, ...]:
    """The Pascal VOC colour map: class i's bits spread over the high bits of R, G and B."""
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return tuple(colors)


def default_class_names(n: int) -> tuple[str, ...]:
    """VOC names when there are 21 classes, `class_<i>` otherwise."""
    if n == len(VOC_CLASSES):
        return VOC_CLASSES
    return tuple(f"class_{i}" for i in range(n))
