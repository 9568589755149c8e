"""Stage 4: one `train()` for both frameworks, distributed under the PyTorchJob / TFJob contracts."""
