"""Backbones: image -> list of feature maps, shallow to deep (see `base.Backbone`)."""

from .base import Backbone, stride_to_dilation

__all__ = ["Backbone", "stride_to_dilation"]
