"""Image in, mask out: decoding, pre- and post-processing, tiling, palettes, video."""
