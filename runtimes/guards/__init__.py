"""Guards around the work: atomic files, output names, interrupts, isolation of untrusted models."""
