"""The YouTube-8M v2 (May 2018) schema: every constant the project relies on, stated once.

Models, loaders and the generator read these names; nothing else spells out 3862 or 1024.
"""

import numpy as np

NUM_CLASSES = 3862
"""Classes in the v2 vocabulary (label ids 0..3861)."""

RGB_DIM = 1024
"""Per-frame (and mean) visual feature size: PCA-reduced Inception activations."""

AUDIO_DIM = 128
"""Per-frame (and mean) audio feature size: VGGish-style embeddings."""

FEATURE_DIM = RGB_DIM + AUDIO_DIM
"""The concatenated feature the research calls "1152-d"."""

MAX_FRAMES = 300
"""Frame-level records hold at most this many frames, one per second."""

# Feature names inside the records.
ID_KEY = "id"
LABELS_KEY = "labels"
MEAN_RGB_KEY = "mean_rgb"
MEAN_AUDIO_KEY = "mean_audio"
RGB_KEY = "rgb"
AUDIO_KEY = "audio"

# The 2017 release used different names and a larger vocabulary; we only detect it to say so.
V1_ID_KEY = "video_id"
V1_NUM_CLASSES = 4716

# Quantization: features are stored as uint8 over [-2, 2]. The official starter code dequantizes as
# q * range/255 + (range/512 + min); the range/512 term centres each value in its bucket.
QUANT_MIN = -2.0
QUANT_MAX = 2.0
_QUANT_RANGE = QUANT_MAX - QUANT_MIN
DEQUANT_SCALE = np.float32(_QUANT_RANGE / 255.0)
DEQUANT_BIAS = np.float32(_QUANT_RANGE / 512.0 + QUANT_MIN)


def dequantize(quantized: np.ndarray) -> np.ndarray:
    """Maps uint8 codes to float32 features, bit-identical to the official starter code.

    The starter computes `float32(q) * scale + bias` in float32; so do we, in place on one new
    array (a lookup table would be slower: NumPy widens uint8 indices to int64 first).

    Args:
        quantized: uint8 array of any shape, e.g. (frames, 1024).

    Returns:
        float32 array of the same shape with values on the grid [-1.9921875, 2.0078125].
    """
    if quantized.dtype != np.uint8:
        raise TypeError(f"dequantize expects uint8 codes, got dtype {quantized.dtype}")
    features = quantized.astype(np.float32)
    features *= DEQUANT_SCALE
    features += DEQUANT_BIAS
    return features


def quantize(features: np.ndarray) -> np.ndarray:
    """Inverse of `dequantize`: rounds to the nearest code, clipping values outside [-2, 2].

    Args:
        features: float array of any shape.

    Returns:
        uint8 array of the same shape; `dequantize(quantize(x))` is within half a step of clip(x).
    """
    codes = np.rint((np.asarray(features, dtype=np.float64) - float(DEQUANT_BIAS)) / float(DEQUANT_SCALE))
    return np.clip(codes, 0, 255).astype(np.uint8)
