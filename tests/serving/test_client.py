import json

import numpy as np
import pytest

from ytlabel.serving.client import binary_infer_request


def test_binary_request_is_a_json_header_then_the_raw_tensors():
    rgb = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    counts = np.array([2], dtype=">i8")  # big-endian in, little-endian on the wire
    body, headers = binary_infer_request({"rgb": rgb, "num_frames": counts})
    length = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:length])
    assert header == {
        "inputs": [
            {"name": "rgb", "shape": [1, 2, 3], "datatype": "UINT8", "parameters": {"binary_data_size": 6}},
            {"name": "num_frames", "shape": [1], "datatype": "INT64", "parameters": {"binary_data_size": 8}},
        ]
    }
    assert body[length:] == bytes(range(6)) + (2).to_bytes(8, "little")
    assert headers["Content-Type"] == "application/octet-stream"
    with pytest.raises(ValueError, match="audio: dtype float16 has no V2 datatype here"):
        binary_infer_request({"audio": np.zeros(3, np.float16)})
