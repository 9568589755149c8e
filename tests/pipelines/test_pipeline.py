"""The KFP pipeline: the committed YAML is current and a valid PipelineSpec; components run as plain
functions; and the whole pipeline runs under kfp.local with the local backend."""

import glob
import json
import os
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp import dsl
from kfp.pipeline_spec import pipeline_spec_pb2

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "pipelines"))

from ytlabel_pipeline import COMPILED, compile_pipeline

from components.ingest.component import ingest
from components.plan.component import plan
from ytlabel.data import reader
from ytlabel.data.vocabulary import load_vocabulary

SAMPLE_DIR = os.path.join(ROOT, "src", "ytlabel", "data", "assets", "sample")


def _spec(path: str) -> pipeline_spec_pb2.PipelineSpec:
    first = next(yaml.safe_load_all(open(path)))
    return json_format.ParseDict(first, pipeline_spec_pb2.PipelineSpec())


def test_compiled_pipeline_is_current_and_parses(tmp_path):
    fresh = compile_pipeline(str(tmp_path / "pipeline.yaml"))
    assert open(fresh).read() == open(COMPILED).read(), (
        "pipelines/ytlabel_pipeline.yaml is stale: run `.venv/bin/python pipelines/ytlabel_pipeline.py`"
    )
    spec = _spec(COMPILED)
    assert spec.pipeline_info.name == "ytlabel"
    parameters = spec.root.input_definitions.parameters
    assert {
        "data_source",
        "shard_fraction",
        "architectures",
        "frameworks",
        "epochs",
        "workers",
        "gpus_per_worker",
        "threshold",
        "registry",
        "backend",
    } <= set(parameters)
    assert parameters["architectures"].default_value.list_value.values[0].string_value == "logistic"
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    images = {
        executor.struct_value.fields["container"].struct_value.fields["image"].string_value
        for executor in executors.values()
    }
    assert images == {"ghcr.io/ytlabel/ytlabel-pipeline:0.1.0"}
    tasks = json.dumps(json_format.MessageToDict(spec))
    assert "ALL_UPSTREAM_TASKS_COMPLETED" in tasks  # the exit handler
    assert '"parameterIterator"' in tasks  # ParallelFor over the plan
    assert "winner-beats-threshold" in tasks


def test_s3_steps_get_the_secret_on_a_cluster():
    documents = list(yaml.safe_load_all(open(COMPILED)))
    executors = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_secret = sorted(
        name.removeprefix("exec-")
        for name, config in executors.items()
        if any(entry["secretName"] == "ytlabel-s3" for entry in config.get("secretAsEnv", []))
    )
    assert with_secret == ["deploy", "evaluate", "expand", "ingest", "register", "select", "train"]
    keys = {pair["envVar"] for pair in executors["exec-train"]["secretAsEnv"][0]["keyToEnv"]}
    assert keys == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"}


def test_side_effect_tasks_never_come_from_the_cache():
    spec = json_format.MessageToDict(_spec(COMPILED))
    caching = {}

    def walk(node):
        if isinstance(node, dict):
            for name, task in node.get("tasks", {}).items():
                caching[name] = task.get("cachingOptions", {}).get("enableCache", False)
            for value in node.values():
                walk(value)

    walk(spec)
    for task in ("train", "register", "deploy", "cleanup"):
        assert caching[task] is False, task
    assert caching["evaluate"] is True and caching["ingest"] is True


def test_plan_component_as_a_function():
    runs = plan.python_func(
        architectures=["fc", "bilstm"], frameworks=["torch", "keras"], expansion_archs=["fc"], levels=["frame", "video"]
    )
    assert runs == [
        {"arch": "fc", "framework": "torch", "expansion": False},
        {"arch": "fc", "framework": "keras", "expansion": False},
        {"arch": "bilstm", "framework": "torch", "expansion": False},
        {"arch": "bilstm", "framework": "keras", "expansion": False},
        {"arch": "fc", "framework": "torch", "expansion": True},
        {"arch": "fc", "framework": "keras", "expansion": True},
    ]
    from ytlabel.errors import YtlabelError

    with pytest.raises(YtlabelError, match=r"\['bilstm'\] need frame-level data, the dataset has \['video'\]"):
        plan.python_func(architectures=["bilstm"], frameworks=["torch"], expansion_archs=[], levels=["video"])


def test_ingest_component_on_the_real_sample(sample_shards, tmp_path):
    dataset = dsl.Dataset(uri=str(tmp_path / "dataset"))
    dataset.path = str(tmp_path / "dataset")  # what the KFP executor sets from the uri
    levels = ingest.python_func(
        data_source=",".join(sample_shards),
        shard_fraction=1.0,
        eval_fraction=0.5,
        synthetic_videos=0,
        run_root=str(tmp_path / "runs"),
        pipeline_run="run-1",
        dataset=dataset,
    )
    assert levels == ["video"]
    manifest = json.load(open(tmp_path / "dataset" / "dataset.json"))
    assert len(manifest["train"]["video"]) == 1 and len(manifest["eval"]["video"]) == 1
    assert set(manifest["train"]["video"] + manifest["eval"]["video"]) == set(sample_shards)
    assert dataset.metadata["train_videos"] + dataset.metadata["eval_videos"] == 589


@pytest.fixture
def keep_print():
    """kfp.local indents task logs by swapping builtins.print; with ParallelFor it can leave an indenting
    print behind (seen in 2.17), which would leak into later tests' output."""
    import builtins

    original = builtins.print
    yield
    builtins.print = original


@pytest.mark.slow
def test_pipeline_runs_under_kfp_local(tmp_path, keep_print):
    """ingest (the real sample for video level, synthetic frames) -> expand -> fc and bilstm in PyTorch ->
    evaluate -> select (among the runs on real videos) -> register -> serve locally and answer three real
    held-out videos -> cleanup."""
    from kfp import local
    from ytlabel_pipeline import ytlabel_pipeline

    from ytlabel.registry import Registry

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)
    curves = tmp_path / "learning_curves.json"  # benchmarks/learning_curves.py's shape, two sizes of fc
    curves.write_text(
        json.dumps(
            {
                "rows": [
                    {"arch": "fc", "framework": "torch", "expansion": False, "videos": videos, "gap_at_20": gap}
                    for videos, gap in ((1000, 0.5), (2000, 0.55))
                ],
                "fits": [],
            }
        )
    )
    ytlabel_pipeline(
        data_source=f"{SAMPLE_DIR},synthetic",
        synthetic_videos=240,
        eval_fraction=0.34,
        architectures=["fc", "bilstm"],
        frameworks=["torch"],
        expansion_archs=[],
        epochs=1,
        workers=1,
        gpus_per_worker=0,
        threshold=0.001,
        train_settings={
            "all": ["batch_size=16"],
            "fc": ["model.head_hidden=64"],
            "bilstm": ["model.hidden=8", "model.layers=1", "min_frames=0"],
        },
        registry=f"file://{tmp_path}/registry",
        model_name="yt8m",
        run_root=str(tmp_path / "runs"),
        backend="local",
        encoder_rgb_dim=1056,
        encoder_audio_dim=136,
        encoder_epochs=1,
        learning_curves=str(curves),
    )
    rows = Registry(str(tmp_path / "registry")).listing()
    assert [(row["name"], row["version"], row["aliases"]) for row in rows] == [("yt8m", 1, ["champion"])]
    # bilstm was scored on generated videos, fc on real ones: the champion is chosen among the real.
    assert rows[0]["arch"] == "fc" and 0.0 < rows[0]["metrics"]["gap_at_20"] <= 1.0
    runs = sorted(os.path.basename(path) for path in glob.glob(str(tmp_path / "runs" / "*" / "*")))
    assert runs == ["bilstm-torch", "fc-torch"]
    [report] = glob.glob(str(tmp_path / "kfp" / "**" / "comparison" / "report.md"), recursive=True)
    text = open(report).read()
    assert "| fc-torch | fc | torch | off |" in text and "| bilstm-torch | bilstm | torch | off |" in text
    # What the Kubeflow UI shows: the comparison page with every plot inline (learning curves included), and
    # each evaluation's genre table.
    [page] = glob.glob(str(tmp_path / "kfp" / "**" / "select" / "report_page"), recursive=True)
    page = open(page).read()
    assert page.count('src="data:image/png;base64,') == 5 and 'alt="learning_curves"' in page
    genre_pages = glob.glob(str(tmp_path / "kfp" / "**" / "evaluate" / "genres"), recursive=True)
    assert len(genre_pages) == 2 and all("Average precision per genre" in open(path).read() for path in genre_pages)
    assert all(" held-out videos</h1>" in open(path).read() for path in genre_pages)
    [answer] = glob.glob(str(tmp_path / "kfp" / "**" / "deploy" / "answer"), recursive=True)
    text = open(answer).read()
    assert text.startswith("yt8m:1 (fc/torch) asked about 3 real videos (video level) it never trained on")
    assert text.count("\n- video `") == 3 and text.count("  - true:      ") == 3 and text.count("  - genres:    ") == 3
    # The first held-out video of the evaluation shard, with its true labels named and their genres.
    dataset = json.load(
        open(glob.glob(str(tmp_path / "kfp" / "**" / "ingest" / "dataset" / "dataset.json"), recursive=True)[0])
    )
    assert dataset["synthetic"] == ["frame"]
    first = next(iter(reader.read_shard(dataset["eval"]["video"][0])))
    vocabulary = load_vocabulary()
    assert f"- video `{first.id}`" in text
    assert f"  - true:      {vocabulary.name(int(first.labels[0]))} ({vocabulary.genre(int(first.labels[0]))})" in text
