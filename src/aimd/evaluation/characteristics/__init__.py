"""One module per quality characteristic of 000 §6.2–§6.3.9; none imports another (see aimd.evaluation.registry)."""
