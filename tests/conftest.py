"""Shared fixtures. Each block names its owner's tests; add yours in a block of its own."""

import pytest


# -- Predictor, tiling and `segedge predict` (tests/test_predictor.py, test_tiling.py, ...) ----
@pytest.fixture(scope="session")
def predictor_models(tmp_path_factory):
    """Tiny exported models with cards (see tests/predictor_models.py)."""
    from tests.predictor_models import build_predictor_models

    return build_predictor_models(tmp_path_factory.mktemp("predictor_models"))
