"""Shared test configuration: the suite runs in float64; tests run with warnings as errors.

fisherlab computes in float64 inside its own calls and leaves the process's JAX alone
(:mod:`fisherlab._precision`); the tests' own oracles use ``jnp`` directly, so the suite turns
64-bit mode on for its process here (``tests/test_precision.py`` checks fisherlab in processes
that leave it off).

The persistent compilation cache is on, as it is for users, but in a folder of this run's own
(made here by the first process, inherited by pytest-xdist's workers and the CLI tests'
subprocesses, removed at exit), so every run starts cold and no user's cache is read or
written: a kernel compiled by one test is loaded, not compiled again, by the next test or
subprocess that needs it (a fifth of the suite's time on two cores).
``FISHERLAB_NO_CACHE=1 pytest`` runs it uncached; ``tests/test_config.py`` tests the cache
itself in subprocesses with their own folders.

XLA compiles the suite's kernels with LLVM's cheap optimisation level
(``--xla_backend_optimization_level=0``, set here for this process and its subprocesses
unless ``XLA_FLAGS`` is already set): most kernels here run once on a few hundred rows, so
compiling them is most of their cost and halves with it. The level changes how fast the
machine code runs and, in the last bits, how it rounds (as another CPU would): a test must
hold to rounding, never to one machine's last bits; the benchmarks run with XLA's defaults,
as users do.
"""

import atexit
import os
import shutil
import tempfile

if "FISHERLAB_SUITE_CACHE" not in os.environ:  # the first process of the run (not a worker)
    _RUN_CACHE = tempfile.mkdtemp(prefix="fisherlab-suite-cache-")
    os.environ["FISHERLAB_SUITE_CACHE"] = os.environ["FISHERLAB_CACHE_DIR"] = _RUN_CACHE
    atexit.register(shutil.rmtree, _RUN_CACHE, ignore_errors=True)
os.environ.setdefault(
    "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)  # the oracles' own jnp (fisherlab leaves JAX as it is)

import fisherlab  # noqa: E402, F401


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def pytest_configure(config: pytest.Config) -> None:
    assert jax.config.jax_enable_x64, "fisherlab must run its tests in float64"
