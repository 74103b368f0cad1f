"""Start-up and exit costs of an evaluation process: the job runner's fast exit, Keras version detection.

``hpcnas.nas.run.horovod`` asks the Balsam job runner for a fast exit (``run.fast_exit``); the
runner then runs the exit handlers and leaves without the interpreter's teardown.
``keras_major`` reads the version of ``tf.keras`` of TensorFlow <= 2.15 (no ``__version__``)
from its package, so Keras 2 gets the legacy optimizers that Horovod wraps.
"""
from __future__ import annotations

import subprocess
import sys
import types

import pytest

from hpcnas.balsam.job_runner import wants_fast_exit
from hpcnas.nas.keras_compat import keras_major


def test_only_a_run_function_that_asks_for_it_gets_the_fast_exit():
    import hpcnas.nas.run.horovod  # noqa: F401 - numpy only until train() runs
    import tests.support.toy  # noqa: F401

    assert wants_fast_exit(["hpcnas.nas.run.horovod.run", "b64:eyJ4IjogMX0"])
    assert wants_fast_exit(["--timeout", "5", "hpcnas.nas.run.horovod.run", '{"x": 0.5}'])
    assert not wants_fast_exit(["tests.support.toy.run", '{"x": 0.5}'])
    assert not wants_fast_exit(["no.such.module.run", "{}"])
    assert not wants_fast_exit([])


def test_fast_exit_runs_exit_handlers_flushes_and_keeps_the_code():
    code = (
        "import atexit, sys\n"
        "from hpcnas.balsam.job_runner import exit_now\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "sys.stdout.write('buffered, no newline')\n"
        "exit_now(3)\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "buffered, no newline" in proc.stdout and "handler ran" in proc.stdout
    assert "not reached" not in proc.stdout


@pytest.mark.parametrize("own, package, expected", [
    ("3.5.0", None, 3),      # Keras 3 (and tf.keras of TF >= 2.16) carries its version
    (None, "2.13.1", 2),     # tf.keras of TF 2.13: keras.api._v2.keras, version of package 'keras'
    (None, None, 3),         # nothing to read: assume the current Keras
])
def test_keras_major_reads_the_package_version_when_the_module_has_none(monkeypatch, own, package, expected):
    top = types.ModuleType("hpcnasfakekeras")
    if package is not None:
        top.__version__ = package
    monkeypatch.setitem(sys.modules, "hpcnasfakekeras", top)
    module = types.ModuleType("hpcnasfakekeras.api._v2.keras")
    if own is not None:
        module.__version__ = own
    assert keras_major(module) == expected
