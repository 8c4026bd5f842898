"""Class names and colour palettes."""

from __future__ import annotations

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)

Color = tuple[int, int, int]

# The Cityscapes benchmark's own colours for its 19 evaluation classes.
CITYSCAPES_PALETTE: tuple[Color, ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)


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
    """VOC names for 21 classes, Cityscapes names for 19, `class_<i>` otherwise."""
    if n == len(VOC_CLASSES):
        return VOC_CLASSES
    if n == len(CITYSCAPES_CLASSES):
        return CITYSCAPES_CLASSES
    return tuple(f"class_{i}" for i in range(n))


def default_palette(n: int) -> tuple[Color, ...]:
    """The palette that goes with `default_class_names(n)`."""
    if n == len(CITYSCAPES_CLASSES):
        return CITYSCAPES_PALETTE
    return voc_palette(n)
