"""batch: prediction and evaluation past one process, on Ray Data."""
