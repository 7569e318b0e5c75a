"""gedge.reference: the PyTorch reference (networks, fused scorer, checkpoints, importers, training, evaluation)."""
