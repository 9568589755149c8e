"""Protobuf message classes wire-compatible with tf.train.Example and tf.train.SequenceExample.

Why this route: the PyTorch images must not install TensorFlow just to parse records. We keep the
maintained `protobuf` runtime (its upb C core does the parsing) and describe the few messages we
need in Python, here, instead of vendoring a .proto file or generated code. Protobuf identifies
fields on the wire by number and type only, so these classes read and write the same bytes as
TensorFlow's. They live in a private descriptor pool, so they never clash with TensorFlow's own
classes when both are loaded in one process (the Keras side and the interop tests).

Messages (field numbers are the wire format):

    BytesList    { repeated bytes value = 1 }
    FloatList    { repeated float value = 1 (packed) }
    Int64List    { repeated int64 value = 1 (packed) }
    Feature      { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3 } }
    Features     { map<string, Feature> feature = 1 }
    FeatureList  { repeated Feature feature = 1 }
    FeatureLists { map<string, FeatureList> feature_list = 1 }
    Example      { Features features = 1 }
    SequenceExample { Features context = 1; FeatureLists feature_lists = 2 }
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "ytlabel.wire"
_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, *, repeated: bool = False, message: str = "", oneof: int | None = None):
    field = _F(name=name, number=number, type=kind, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if message:
        field.type_name = f".{_PACKAGE}.{message}"
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _message(name: str, *fields, oneofs: tuple[str, ...] = (), nested=()) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name, field=list(fields), nested_type=list(nested))
    for oneof in oneofs:
        message.oneof_decl.add(name=oneof)
    return message


def _map_of(parent: str, field_name: str, value_message: str, entry_name: str):
    """A proto3 map<string, value_message>: a repeated nested *Entry message flagged map_entry."""
    entry = _message(
        entry_name,
        _field("key", 1, _F.TYPE_STRING),
        _field("value", 2, _F.TYPE_MESSAGE, message=value_message),
    )
    entry.options.map_entry = True
    field = _field(field_name, 1, _F.TYPE_MESSAGE, repeated=True, message=f"{parent}.{entry_name}")
    return field, entry


def _file() -> descriptor_pb2.FileDescriptorProto:
    features_map, features_entry = _map_of("Features", "feature", "Feature", "FeatureEntry")
    lists_map, lists_entry = _map_of("FeatureLists", "feature_list", "FeatureList", "FeatureListEntry")
    messages = [
        _message("BytesList", _field("value", 1, _F.TYPE_BYTES, repeated=True)),
        _message("FloatList", _field("value", 1, _F.TYPE_FLOAT, repeated=True)),
        _message("Int64List", _field("value", 1, _F.TYPE_INT64, repeated=True)),
        _message(
            "Feature",
            _field("bytes_list", 1, _F.TYPE_MESSAGE, message="BytesList", oneof=0),
            _field("float_list", 2, _F.TYPE_MESSAGE, message="FloatList", oneof=0),
            _field("int64_list", 3, _F.TYPE_MESSAGE, message="Int64List", oneof=0),
            oneofs=("kind",),
        ),
        _message("Features", features_map, nested=[features_entry]),
        _message("FeatureList", _field("feature", 1, _F.TYPE_MESSAGE, repeated=True, message="Feature")),
        _message("FeatureLists", lists_map, nested=[lists_entry]),
        _message("Example", _field("features", 1, _F.TYPE_MESSAGE, message="Features")),
        _message(
            "SequenceExample",
            _field("context", 1, _F.TYPE_MESSAGE, message="Features"),
            _field("feature_lists", 2, _F.TYPE_MESSAGE, message="FeatureLists"),
        ),
    ]
    # proto3: repeated scalars are packed by default, as in TensorFlow's files.
    return descriptor_pb2.FileDescriptorProto(
        name="ytlabel/wire.proto", package=_PACKAGE, syntax="proto3", message_type=messages
    )


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _class(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Feature = _class("Feature")
Features = _class("Features")
FeatureList = _class("FeatureList")
Example = _class("Example")
SequenceExample = _class("SequenceExample")


# --- A fast path for the bulk of frame-level data -------------------------------------------------
# A frame-level record is ~300 KB of per-frame bytes values; walking 600 Feature messages from
# Python costs ~1 us each. Instead we locate each FeatureList in the serialized record and, when its
# frames are encoded in the one canonical way every writer (TensorFlow's and ours) uses, view it as
# a (frames, header + width) uint8 array and slice the header off. The header bytes are checked for
# every frame, so anything else (other widths, extra fields, non-minimal varints) takes the regular
# protobuf path instead and gets its precise error message there.

_LEN = 2  # wire type of length-delimited fields


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at `position`."""
    value = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def length_delimited_fields(buffer: bytes, start: int = 0, end: int | None = None) -> dict[int, list[tuple[int, int]]]:
    """{field number: [(start, end), ...]} of the length-delimited fields of one message.

    Other wire types are stepped over. Raises ValueError on malformed input (the caller falls back
    to the protobuf runtime, which reports the problem).
    """
    end = len(buffer) if end is None else end
    fields: dict[int, list[tuple[int, int]]] = {}
    position = start
    while position < end:
        tag, position = _varint(buffer, position)
        number, kind = tag >> 3, tag & 7
        if kind == _LEN:
            length, position = _varint(buffer, position)
            fields.setdefault(number, []).append((position, position + length))
            position += length
        elif kind == 0:
            _, position = _varint(buffer, position)
        elif kind in (1, 5):
            position += 8 if kind == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {kind}")
    if position != end:
        raise ValueError("field runs past the end of its message")
    return fields


def map_entries(buffer: bytes, start: int, end: int) -> dict[str, tuple[int, int]]:
    """{key: (start, end) of the value} of a serialized map<string, message> field (field 1)."""
    ranges = {}
    for entry_start, entry_end in length_delimited_fields(buffer, start, end).get(1, []):
        entry = length_delimited_fields(buffer, entry_start, entry_end)
        ((key_start, key_end),) = entry[1]
        (ranges[buffer[key_start:key_end].decode()],) = entry[2]
    return ranges


def _frame_header(width: int) -> bytes:
    """Bytes before each frame's data: Feature tag+len, BytesList tag+len, value tag+len."""
    value = b"\x0a" + _encode_varint(width)
    bytes_list = b"\x0a" + _encode_varint(len(value) + width)
    return b"\x0a" + _encode_varint(len(bytes_list) + len(value) + width) + bytes_list + value


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def fixed_width_frames(buffer: bytes, start: int, end: int, width: int):
    """(frames, width) uint8 read-only view of a canonically encoded FeatureList, or None to fall back.

    The view shares memory with `buffer` (no copy); it keeps `buffer` alive as long as it lives.
    """
    import numpy as np

    header = _frame_header(width)
    row = len(header) + width
    if end <= start or (end - start) % row:
        return None
    table = np.frombuffer(buffer, dtype=np.uint8, count=end - start, offset=start).reshape(-1, row)
    if not (table[:, : len(header)] == np.frombuffer(header, dtype=np.uint8)).all():
        return None
    return table[:, len(header) :]


def packed_floats(buffer: bytes, start: int, end: int, count: int):
    """(count,) float32 read-only view of a Feature holding a packed FloatList, or None to fall back.

    The Feature must be exactly: float_list (field 2) holding one packed `value` (field 1) of
    `count` little-endian floats.
    """
    import numpy as np

    size = 4 * count
    header = b"\x12" + _encode_varint(1 + len(_encode_varint(size)) + size) + b"\x0a" + _encode_varint(size)
    if end - start != len(header) + size or buffer[start : start + len(header)] != header:
        return None
    return np.frombuffer(buffer, dtype="<f4", count=count, offset=start + len(header))
