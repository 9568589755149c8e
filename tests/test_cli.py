import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers.cli_rule import one_error_line
from ytlabel.cli import main


def test_inspect_json_on_the_real_sample(sample_shards, capsys):
    assert main(["data", "inspect", os.path.dirname(sample_shards[0]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["videos"], summary["level"], summary["skipped_corrupt"], summary["shards"]) == (589, "video", 0, 2)
    assert summary["labels_per_video"] == pytest.approx(1849 / 589)
    assert summary["frames_per_video"] is None
    assert summary["top_genres"][0] == ["Arts & Entertainment", 215]


def test_inspect_takes_file_uris_as_it_takes_paths(sample_shards, capsys):
    assert main(["data", "inspect", f"file://{sample_shards[0]}", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["data", "inspect", sample_shards[0], "--json"]) == 0
    assert one == json.loads(capsys.readouterr().out) and one["shards"] == 1
    assert main(["data", "inspect", f"file://{os.path.dirname(sample_shards[0])}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["videos"] == 589


def test_inspect_frame_level_text(synth_dir, capsys):
    assert main(["data", "inspect", os.path.join(synth_dir, "frame")]) == 0
    out = capsys.readouterr().out
    assert "level            frame" in out and "videos           24" in out and "frames/video" in out


def _corrupt_copy(sample_shards, tmp_path):
    path = tmp_path / "validate0000.tfrecord"
    shutil.copy(sample_shards[0], path)
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x01
    path.write_bytes(bytes(data))
    return str(path)


def test_corruption_is_one_line_with_file_and_offset(sample_shards, tmp_path, capsys):
    path = _corrupt_copy(sample_shards, tmp_path)
    assert main(["data", "inspect", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"ytlabel: error: {path} at byte offset ") and "CRC mismatch" in err


def test_skip_corrupt_counts_instead_of_failing(sample_shards, tmp_path, capsys):
    path = _corrupt_copy(sample_shards, tmp_path)
    assert main(["data", "inspect", path, "--json", "--skip-corrupt"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["videos"], summary["skipped_corrupt"]) == (283, 1)


def test_bad_flag_values_name_the_field(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--videos", "30", "--frames", "500"]) == 2
    assert "frames=500: must be in [2, 300]" in one_error_line(capsys)
    assert not os.path.exists(tmp_path / "x")
    assert main(["data", "inspect", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or directory" in one_error_line(capsys)


def test_console_script_synth_then_peek(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "ytlabel")
    out = str(tmp_path / "d")
    synth = subprocess.run(
        [script, "data", "synth", "--out", out, "--videos", "6", "--shards", "2", "--frames", "12"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote 6 videos in 2 shards per level" in synth.stdout
    peek = subprocess.run(
        [script, "data", "peek", os.path.join(out, "frame"), "--batch-size", "3", "--max-frames", "5"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "rgb (3, 5, 1024)" in peek.stdout and "num_frames (3,)" in peek.stdout


def test_models_list_json(capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = {row["arch"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"logistic", "moe", "fc", "bilstm", "stream_lstm", "fc_stream_lstm"}
    # what `ytlabel train --arch fc` trains: the fc preset's gating adds 4,200,448 to the spec's 10,280,982
    assert rows["fc"]["params"] == 14_481_430 and rows["fc"]["preset"] == "fc" and rows["bilstm"]["level"] == "frame"
    assert rows["moe"]["frameworks"] == ["torch", "keras"]


def test_models_check_json_reports_parity(capsys):
    assert main(["models", "check", "--json", "--arch", "logistic", "--arch", "stream_lstm"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["arch"] for row in rows] == ["logistic", "stream_lstm"]
    for row in rows:
        assert row["torch_params"] == row["keras_params"] and row["max_abs_diff"] <= 1e-4
    assert main(["models", "check", "--arch", "cnn"]) == 2
    assert "--arch 'cnn' is not an architecture" in one_error_line(capsys)


@pytest.mark.slow  # a fresh process importing TensorFlow twice
def test_tensorflows_start_up_chatter_is_kept_off_the_terminal_unless_verbose():
    import subprocess
    import sys

    quiet = subprocess.run(
        [sys.executable, "-m", "ytlabel", "models", "check", "--arch", "logistic"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0 and quiet.stdout.startswith("logistic        torch   4,452,886  keras   4,452,886")
    assert quiet.stderr == ""
    loud = subprocess.run(
        [sys.executable, "-m", "ytlabel", "--verbose", "models", "check", "--arch", "logistic"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loud.returncode == 0 and "oneDNN custom operations are on" in loud.stderr


def test_the_chatter_filter_drops_only_the_start_up_lines():
    import subprocess
    import sys

    code = (
        "import os, sys\nfrom ytlabel.chatter import quiet_native_stderr\nwith quiet_native_stderr():\n"
        "    os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on. You may see\\n')\n"
        "    os.write(2, b'E0000 a native error that must be seen\\n')\n"
        "    print('from python', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert sorted(done.stderr.splitlines()) == ["E0000 a native error that must be seen", "from python"]


def test_data_request_writes_a_v1_body_the_server_takes(synth_dir, sample_shards, capsys):
    import base64

    from ytlabel.data.examples import InputOptions
    from ytlabel.serving.payload import from_instances

    assert main(["data", "request", sample_shards[0], "--videos", "2"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [len(video["mean_rgb"]) for video in body["instances"]] == [1024, 1024]
    assert len(from_instances(body["instances"], InputOptions(level="video")).inputs["rgb"]) == 2
    assert main(["data", "request", os.path.join(synth_dir, "frame"), "--videos", "1"]) == 0
    [video] = json.loads(capsys.readouterr().out)["instances"]
    assert len(base64.b64decode(video["rgb"][0]["b64"])) == 1024 and len(video["rgb"]) == len(video["audio"]) >= 10
    assert main(["data", "request", os.path.join(synth_dir, "frame"), "--videos", "1000"]) == 2
    assert "24 videos, fewer than --videos=1000" in capsys.readouterr().err
