"""Shared test configuration: the suite runs in float64; tests run with warnings as errors.

fisherlab computes in float64 inside its own calls and leaves the process's JAX alone
(:mod:`fisherlab._precision`); the tests' own oracles use ``jnp`` directly, so the suite turns
64-bit mode on for its process here (``tests/test_precision.py`` checks fisherlab in processes
that leave it off).

The persistent compilation cache is off in the suite (each test compiles what it runs;
``tests/test_config.py`` tests the cache in subprocesses).
"""

import os

os.environ.setdefault("FISHERLAB_NO_CACHE", "1")

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
