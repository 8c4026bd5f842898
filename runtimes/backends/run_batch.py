"""What every runtime behind the Predictor offers: one batch in, one batch out."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RunBatch = Callable[[np.ndarray], np.ndarray]
"""N x 3 x H x W float32 model inputs -> the model's N x C x h x w float32 outputs (a valid-mode model's h, w
are H and W less its margin on each side)."""
