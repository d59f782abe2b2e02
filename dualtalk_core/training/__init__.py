"""Offline training of DualTalk models: losses, the training loop, checkpoints, seed sweeps."""
