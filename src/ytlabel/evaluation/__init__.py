"""Stage 5: YT8M's official metrics (numpy, float64, streaming) and the comparison report."""
