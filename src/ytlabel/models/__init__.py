"""Stage 3: architectures from one spec (`spec.py`), built by `torch/` and `keras/` (same file names)."""
