"""Measuring: parity, segmentation metrics, timing, the machine a figure was taken on."""
