"""A served model under mixed valid and invalid traffic from 8 concurrent clients: every valid request is
answered 200, every invalid one 400 (never 5xx), and the server keeps serving. The 10,000-request run is
benchmarks/serving_abuse.py."""

import pytest
from abuse import hammer

from ytlabel.registry import Registry
from ytlabel.serving.server import running


@pytest.mark.slow
def test_mixed_traffic_gets_no_server_error(fc_run, tmp_path):
    Registry(str(tmp_path / "reg")).push(fc_run, "yt8m")
    with running("--model", "yt8m:1", "--registry", str(tmp_path / "reg")) as url:
        figures = hammer(url, "yt8m", requests=800, concurrency=8)
    assert figures["server_errors"] == 0 and figures["unexpected"] == {}, figures
    kinds = {key.rsplit(" ", 1)[0] for key in figures["status"]}
    assert len(kinds) == 9  # every kind of request was sent
    assert figures["status"]["valid 200"] > 400
