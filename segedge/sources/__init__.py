"""sources: the PyTorch model a name stands for, from the zoo or the user's own code, with its card."""

from segedge.sources.build import INIT_SEED, BuiltModel, build, is_user_source
from segedge.sources.user import load_user_function

__all__ = ["INIT_SEED", "BuiltModel", "build", "is_user_source", "load_user_function"]
