"""hpcnas.core.interrupts in this process: raising phase, deferred blocks, restored handlers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hpcnas.core import interrupts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _python_default_sigint():
    """Each test starts from Python's own SIGINT handler, whatever an earlier test in this
    process left installed (a full run with the e2e tests did), and gets the previous one back."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)  # Python runs the handler at the next bytecode of this thread


def test_a_signal_in_a_deferred_block_acts_when_the_block_ends() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.raising():
            with interrupts.deferred():
                _signal_self(signal.SIGINT)
                reached.append("after the signal")  # the block is not cut short
            reached.append("after the block")  # never: the signal acts when the block ends
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_sigterm_raises_terminated_and_its_default_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(interrupts.Terminated):
        with interrupts.raising():
            _signal_self(signal.SIGTERM)
            pytest.fail("SIGTERM did not interrupt the raising phase")
    assert signal.getsignal(signal.SIGTERM) is before


def test_deferred_as_a_decorator_keeps_an_error_raised_inside() -> None:
    @interrupts.deferred()
    def record() -> None:
        _signal_self(signal.SIGINT)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):  # the real cause wins over the pending signal
        with interrupts.raising():
            record()


def test_outside_a_command_setup_phase_and_finish_change_nothing() -> None:
    with interrupts.setup_phase():
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert interrupts.finish(7) == 7


def test_importing_it_costs_no_heavy_module() -> None:
    """The command line installs it first: ``signal`` (enum) and ``typing`` would delay that by ~50 ms."""
    # what this import adds (an editable install's import finder may load enum at start-up)
    code = ("import sys; before = set(sys.modules); import hpcnas.core.interrupts; "
            "print(sorted({'signal', 'typing', 'enum'} & (set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=ROOT)).stdout
    assert out.strip() == "[]"
