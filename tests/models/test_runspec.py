"""RunSpec: spec.json written and read in one place, for every architecture, an encoder that moved and an
ensemble; the record a run writes is the one a rerun, the predictor and the registry read."""

import json

import pytest

from ytlabel.config import load_config
from ytlabel.data.examples import InputOptions
from ytlabel.models.runspec import ENSEMBLE, RunSpec
from ytlabel.models.spec import ARCHITECTURES, EncoderRef


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_survives_its_record(arch):
    config = load_config(arch, "keras", "d", "o", None, ["target=genres", "max_frames=30", "stride=2"])
    run = config.run_spec()
    record = json.loads(json.dumps(run.to_record()))  # as spec.json holds it
    assert (record["arch"], record["framework"], record["level"], record["target"]) == (
        arch,
        "keras",
        ARCHITECTURES[arch].level,
        "genres",
    )
    back = RunSpec.from_record(record)
    assert back.spec == run.spec and back.to_record() == record
    # min_frames filters training data only: it is not part of what the model is
    assert back.options == InputOptions(run.level, 30, 2, 0, False, "genres")


def test_the_default_target_is_left_out_and_an_encoder_is_found_where_it_lies_now():
    config = load_config("fc_stream_lstm", "torch", "d", "o", None, ["encoder=s3://b/enc"])
    record = config.run_spec().to_record()
    assert "target" not in record and record["spec"]["encoder"] == {"path": "s3://b/enc", "finetune": False}
    moved = RunSpec.from_record(record, encoder_path=lambda path: "/version/encoder")
    assert moved.spec.encoder == EncoderRef("/version/encoder", False)
    assert moved.spec.fc.encoder == moved.spec.streams.encoder == moved.spec.encoder  # the parts share it


def test_an_ensembles_spec_stays_its_record():
    record = {
        "arch": ENSEMBLE,
        "framework": "keras+torch",
        "level": "video",
        "max_frames": 300,
        "stride": 1,
        "l2_normalize": False,
        "spec": {"members": ["model/members/00-fc-torch"], "combine": "mean_probability"},
    }
    run = RunSpec.from_record(record)
    assert run.spec == record["spec"] and run.to_record() == record
