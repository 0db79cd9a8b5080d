"""What ``import fisherlab`` configures: JAX's persistent compilation cache in the user's cache dir.

Float64 is no longer process-wide (``tests/test_startup.py``, ``tests/test_precision.py``): the
fits here run in fresh processes whose JAX stays 32-bit, and still give float64 numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from fisherlab import _config

FIT = (
    "import numpy as np, fisherlab as fl; "
    "m = fl.Model(lambda th, x: fl.dist.Poisson(th['rate']), constraints={'rate': 'positive'}); "
    "res = fl.fit(m, np.array([1.0, 2.0, 4.0]), init={'rate': 1.0}); print(res.se()['rate'])"
)


def _run(env: dict[str, str]) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("FISHERLAB_", "JAX_COMPILATION"))}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", FIT], env=full, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_cache_written_then_reused(tmp_path: Path) -> None:
    first = _run({"FISHERLAB_CACHE_DIR": str(tmp_path)})
    entries = sorted(p.name for p in (tmp_path / "jax").iterdir())
    assert entries, "no kernel was written to the persistent cache"
    second = _run({"FISHERLAB_CACHE_DIR": str(tmp_path)})
    assert second == first  # same numbers from the cached kernels
    # sqrt(rate / n) at the MLE 7/3, to the fit's tolerance: float64 (float32 would be 1e-7 off)
    assert float(first) == pytest.approx((7 / 9) ** 0.5, rel=1e-9)
    assert sorted(p.name for p in (tmp_path / "jax").iterdir()) == entries  # nothing compiled anew


def test_cache_follows_xdg_and_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("FISHERLAB_NO_CACHE", "FISHERLAB_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR"):
        monkeypatch.delenv(key, raising=False)
    assert not jax.config.jax_compilation_cache_dir  # the suite runs uncached (conftest)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert _config.cache_dir() == str(tmp_path / "fisherlab" / "jax")
    monkeypatch.setenv("FISHERLAB_CACHE_DIR", str(tmp_path / "mine"))
    assert _config.cache_dir() == str(tmp_path / "mine" / "jax")
    monkeypatch.setenv("FISHERLAB_NO_CACHE", "1")
    assert _config.cache_dir() is None
    monkeypatch.delenv("FISHERLAB_NO_CACHE")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
    assert _config.cache_dir() is None  # the process chose its own cache


def test_no_cache_in_the_suite() -> None:
    _run({"FISHERLAB_NO_CACHE": "1"})  # runs fine without a cache
    assert os.environ.get("FISHERLAB_NO_CACHE") == "1"
