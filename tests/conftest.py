"""Shared test configuration: fisherlab enables float64 on import; tests run with warnings as errors.

The persistent compilation cache is off in the suite (each test compiles what it runs;
``tests/test_config.py`` tests the cache in subprocesses).
"""

import os

os.environ.setdefault("FISHERLAB_NO_CACHE", "1")

import jax
import numpy as np
import pytest

import fisherlab  # noqa: F401  (enables jax_enable_x64)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def pytest_configure(config: pytest.Config) -> None:
    assert jax.config.jax_enable_x64, "fisherlab must run its tests in float64"
