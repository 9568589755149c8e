"""Request bodies for services that call a served model in the V2 binary tensor extension.

The extension carries tensors as raw bytes after a small JSON header: a 300-frame video is 338 KB
instead of 459 KB of base64 JSON. `ytlabel serve` accepts it, but KServe 0.21 converts raw tensors
into Python lists before the model sees them, which made it ~20x slower than V1 base64 frames
(docs/benchmarks.md). Use it with servers that decode it natively, or once KServe does.
"""

import json

import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"  # the extension's header: bytes of JSON before the data
_DATATYPES = {np.dtype(np.uint8): "UINT8", np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


def binary_infer_request(tensors: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a V2 `/v2/models/<name>/infer` request with every tensor sent as raw bytes.

    For frame models: {"rgb": uint8 [n, frames, 1024], "audio": uint8 [n, frames, 128]}, the quantized
    codes as the TFRecords hold them (FP32 features work too). Arrays are sent little-endian, C order.
    """
    inputs, chunks = [], []
    for name, array in tensors.items():
        array = np.asarray(array)
        datatype = _DATATYPES.get(array.dtype.newbyteorder("="))
        if datatype is None:
            raise ValueError(f"{name}: dtype {array.dtype} has no V2 datatype here; send uint8, float32 or int64")
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        inputs.append(
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(data)},
            }
        )
        chunks.append(data)
    header = json.dumps({"inputs": inputs}).encode()
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return header + b"".join(chunks), headers
