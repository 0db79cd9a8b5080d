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

FIT = (
    "import numpy as np, fisherlab as fl; "
    "m = fl.Model(lambda th, x: fl.dist.Poisson(th['rate']), constraints={'rate': 'positive'}); "
    "res = fl.fit(m, np.array([1.0, 2.0, 4.0]), init={'rate': 1.0}); print(res.se()['rate'])"
)


def _run(env: dict[str, str], code: str = FIT) -> str:
    ours = ("FISHERLAB_", "JAX_COMPILATION", "XDG_")
    full = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True)
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


def _cache_dir_in(env: dict[str, str]) -> str:
    """``_config.cache_dir()`` in a fresh process (this one has its cache set up by the suite)."""
    code = "from fisherlab import _config; print(_config.cache_dir())"
    return _run(env, code)


def test_cache_follows_xdg_and_can_be_turned_off(tmp_path: Path) -> None:
    if sys.platform.startswith("linux"):
        assert _cache_dir_in({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "fisherlab" / "jax")
    mine = {"FISHERLAB_CACHE_DIR": str(tmp_path / "mine")}
    assert _cache_dir_in(mine) == str(tmp_path / "mine" / "jax")
    assert _cache_dir_in({**mine, "FISHERLAB_NO_CACHE": "1"}) == "None"
    assert _cache_dir_in({**mine, "FISHERLAB_NO_CACHE": "0"}) == str(tmp_path / "mine" / "jax")
    theirs = {**mine, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "theirs")}
    assert _cache_dir_in(theirs) == "None"  # the process chose its own cache


def test_runs_without_a_cache(tmp_path: Path) -> None:
    out = _run({"FISHERLAB_NO_CACHE": "1", "FISHERLAB_CACHE_DIR": str(tmp_path)})
    assert float(out) == pytest.approx((7 / 9) ** 0.5, rel=1e-9)
    assert not any(tmp_path.iterdir())  # nothing written: no compiled kernel, no stored one


def test_the_suite_has_a_cache_of_its_own() -> None:
    """The suite caches in a folder of its own run (conftest), never in the user's cache."""
    suite = os.environ.get("FISHERLAB_SUITE_CACHE")
    if os.environ.get("FISHERLAB_NO_CACHE", "") not in ("", "0") or suite is None:
        pytest.skip("the suite was run uncached or with a cache chosen outside fisherlab")
    assert os.environ["FISHERLAB_CACHE_DIR"] == suite
    assert Path(suite).name.startswith("fisherlab-suite-cache-")
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        assert jax.config.jax_compilation_cache_dir == os.path.join(suite, "jax")
