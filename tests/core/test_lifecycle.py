"""Stop signals and phases: ``python -m pytest tests/core/test_lifecycle.py``."""

import os
import signal

import pytest

from src.core.lifecycle import (
    Interrupted,
    current_phase,
    install_signal_handlers,
    phase,
    phase_of,
)


@pytest.fixture
def handlers():
    """Our handlers for the test, the original ones back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    install_signal_handlers()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_unwinds_as_interrupted_naming_the_phase(handlers, signum, code):
    with pytest.raises(Interrupted) as stop:
        with phase("training dyad_tiny for 3 epoch(s)"):
            with phase("epoch 2"):
                os.kill(os.getpid(), signum)
    assert stop.value.phase == "epoch 2" and stop.value.exit_code == code
    assert stop.value.signal_name == signal.Signals(signum).name
    assert current_phase() == "starting"  # every phase left on the way out


def test_a_second_signal_while_stopping_is_ignored(handlers):
    with pytest.raises(Interrupted):
        os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)  # the run is being recorded: no second exception


def test_interrupted_is_not_an_exception_that_generic_handlers_swallow():
    assert not issubclass(Interrupted, Exception)


def test_an_error_names_the_innermost_phase_it_left():
    with pytest.raises(ValueError) as caught:
        with phase("outer"), phase("inner"):
            raise ValueError("x")
    assert phase_of(caught.value) == "inner"
    assert phase_of(ValueError("raised outside any phase")) is None
