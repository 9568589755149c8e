"""The per-run usage summary's data-wait figures: the first step (reader start-up) apart from the rest."""

import pytest

from ytlabel.training.telemetry import Telemetry


@pytest.fixture
def telemetry():
    telemetry = Telemetry(rank=0, interval_s=60)
    yield telemetry
    telemetry.close()


def test_the_first_steps_wait_is_counted_apart(telemetry):
    telemetry.step(1.0, 0.9, 8, 1.0)  # the readers start: most of the first step is waiting
    telemetry.step(0.5, 0.05, 8, 1.0)
    telemetry.step(1.5, 0.05, 8, 1.0)
    usage = telemetry.summary()
    assert usage["first_batch_wait_s"] == 0.9
    assert usage["data_wait_share"] == 0.05  # 0.1 s of 2.0 s


def test_a_one_step_run_reports_that_steps_share(telemetry):
    telemetry.step(2.0, 0.5, 8, 1.0)
    usage = telemetry.summary()
    assert (usage["data_wait_share"], usage["first_batch_wait_s"]) == (0.25, 0.5)


def test_no_steps_no_share(telemetry):
    usage = telemetry.summary()
    assert usage["data_wait_share"] is None and usage["first_batch_wait_s"] is None
