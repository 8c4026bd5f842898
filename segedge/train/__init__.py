"""train: segedge's own reproducible recipe for trained demo weights (accuracy figures need trained models)."""

from segedge.train.recipe import FULL, SMALL, TrainConfig, TrainedModel, cache_root, train, trained_model

__all__ = ["FULL", "SMALL", "TrainConfig", "TrainedModel", "cache_root", "train", "trained_model"]
