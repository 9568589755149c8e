"""TensorBoard event files for both frameworks, written with our own TFRecord writer.

An event file is a TFRecord file of `Event` messages: the first carries `file_version`, the others a
step, a wall time and scalar `Summary` values. We describe the three messages in Python (field
numbers are the format), so neither framework's summary machinery, nor the tensorboard package, is
needed to produce curves that TensorBoard reads.

    Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5 }
    Summary { repeated Value value = 1 }
    Value   { string tag = 1; float simple_value = 2 }
"""

import os
import socket
import time

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ytlabel.data.tfrecord import TFRecordWriter

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "ytlabel.events"


def _descriptor() -> descriptor_pb2.FileDescriptorProto:
    def field(name, number, kind, message="", repeated=False):
        out = _F(name=name, number=number, type=kind, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if message:
            out.type_name = f".{_PACKAGE}.{message}"
        return out

    value = descriptor_pb2.DescriptorProto(name="Value", field=[
        field("tag", 1, _F.TYPE_STRING), field("simple_value", 2, _F.TYPE_FLOAT)])
    summary = descriptor_pb2.DescriptorProto(name="Summary", field=[
        field("value", 1, _F.TYPE_MESSAGE, "Value", repeated=True)])
    event = descriptor_pb2.DescriptorProto(name="Event", field=[
        field("wall_time", 1, _F.TYPE_DOUBLE), field("step", 2, _F.TYPE_INT64),
        field("file_version", 3, _F.TYPE_STRING), field("summary", 5, _F.TYPE_MESSAGE, "Summary")])
    return descriptor_pb2.FileDescriptorProto(name="ytlabel/events.proto", package=_PACKAGE, syntax="proto3",
                                              message_type=[value, summary, event])


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_descriptor())
Event = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.Event"))


class EventWriter:
    """Appends scalar summaries to `DIR/events.out.tfevents.<time>.<host>.<pid>`, flushed per event."""

    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._writer = TFRecordWriter(os.path.join(directory, name), atomic=False)  # readable while training
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        event = Event(wall_time=time.time(), step=step)
        for tag, value in values.items():
            event.summary.value.add(tag=tag, simple_value=float(value))
        self._write(event)

    def close(self) -> None:
        self._writer.close()

    def _write(self, event) -> None:
        self._writer.write(event.SerializeToString())
