import numpy as np
import pytest
import tensorflow as tf

from ytlabel.data import schema


def test_constants_match_the_v2_release():
    assert (schema.NUM_CLASSES, schema.RGB_DIM, schema.AUDIO_DIM, schema.MAX_FRAMES) == (3862, 1024, 128, 300)
    assert schema.FEATURE_DIM == 1152


def test_dequantize_grid_ends_are_the_documented_values():
    values = schema.dequantize(np.array([0, 255], dtype=np.uint8))
    assert values.tolist() == [-1.9921875, 2.0078125]


def test_dequantize_is_bit_identical_to_the_starter_formula_in_tensorflow():
    codes = np.arange(256, dtype=np.uint8)
    # The starter's utils.Dequantize on a float32 tensor: feat * (4 / 255) + (4 / 512 - 2).
    starter = (tf.cast(codes, tf.float32) * (4.0 / 255.0) + (4.0 / 512.0 - 2.0)).numpy()
    np.testing.assert_array_equal(schema.dequantize(codes), starter)


def test_quantize_inverts_dequantize_and_clips():
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(schema.quantize(schema.dequantize(codes)), codes)
    assert schema.quantize(np.array([-7.0, 9.0, 0.0])).tolist() == [0, 255, 127]


def test_dequantize_rejects_float_input():
    with pytest.raises(TypeError, match="uint8"):
        schema.dequantize(np.zeros(3, np.float32))
