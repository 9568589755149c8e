"""Tiny model specs shared by the model and feature tests."""

from ytlabel.models import spec as S

CLASSES = 7
# A tiny fc run (1 epoch, all videos trained on): the settings of conftest's finished runs.
TINY_FC = [
    "model.rgb_hidden=16",
    "model.audio_hidden=8",
    "model.head_hidden=16",
    "epochs=1",
    "batch_size=8",
    "validation_fraction=0",
]


def tiny_spec(arch: str, encoder=None):
    """Small widths so every test builds in milliseconds; the structure is the default's."""
    sizes = {
        "logistic": {},
        "moe": {"mixtures": 3},
        "fc": {"rgb_hidden": 8, "audio_hidden": 4, "head_hidden": 6},
        "bilstm": {"hidden": 5, "layers": 2},
        "stream_lstm": {"rgb_hidden": 6, "audio_hidden": 3, "layers": 2},
        "fc_stream_lstm": {},
    }[arch]
    if arch == "fc_stream_lstm":
        sizes = {
            "fc": S.FCSpec(num_classes=CLASSES, encoder=encoder, rgb_hidden=8, audio_hidden=4, head_hidden=6),
            "streams": S.StreamLSTMSpec(num_classes=CLASSES, encoder=encoder, rgb_hidden=6, audio_hidden=3),
        }
    return S.make_spec(arch, num_classes=CLASSES, encoder=encoder, **sizes)
