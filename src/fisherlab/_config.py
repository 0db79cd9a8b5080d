"""Process-wide JAX configuration fisherlab needs: float64 arithmetic and a persistent compilation cache.

Covariances come from inverting ill-conditioned matrices, so fisherlab turns on
``jax_enable_x64`` when it is imported. Float32 for large networks: pass float32
parameters and data explicitly (JAX keeps the dtype you give it), or set
``JAX_ENABLE_X64=0``-style configuration after import with
``jax.config.update("jax_enable_x64", False)`` for the whole process.

Compiled kernels are kept on disk by JAX's persistent compilation cache, so a second
run of the same model shape (a second ``fisherlab fit`` on new data of the same
columns, say) loads them instead of compiling again. The cache lives in the user's
cache directory (:func:`platformdirs.user_cache_dir`: ``$XDG_CACHE_HOME/fisherlab/jax``,
by default ``~/.cache/fisherlab/jax`` on Linux, ``~/Library/Caches/fisherlab/jax`` on
macOS), or in ``$FISHERLAB_CACHE_DIR/jax``. It is not touched when the process has
already chosen a cache (``jax.config.jax_compilation_cache_dir`` set before import, or
``JAX_COMPILATION_CACHE_DIR``), and it is off with ``FISHERLAB_NO_CACHE=1``. Every
kernel is stored (:data:`MIN_COMPILE_SECONDS` is 0, JAX's default is 1 s): a fit compiles
dozens of kernels of 0.01–0.5 s each, which together are most of a first run's time
(``fisherlab demo``: 4.5 s uncached, 3.2 s from the cache, about 250 kB on disk).
"""

import os

import jax

__all__ = ["MIN_COMPILE_SECONDS", "cache_dir"]

#: Kernels that compile faster than this are not written to the persistent cache.
MIN_COMPILE_SECONDS = 0.0


def cache_dir() -> str | None:
    """The persistent compilation cache fisherlab sets up, or ``None`` when it sets none."""
    if os.environ.get("FISHERLAB_NO_CACHE", "") not in ("", "0"):
        return None
    if getattr(jax.config, "jax_compilation_cache_dir", None) or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None  # the process chose its own cache
    base = os.environ.get("FISHERLAB_CACHE_DIR")
    if not base:
        try:
            import platformdirs
        except ImportError:  # pragma: no cover - a dependency; an installation without it runs uncached
            return None
        base = platformdirs.user_cache_dir("fisherlab", appauthor=False)
    return os.path.join(base, "jax")


jax.config.update("jax_enable_x64", True)
_CACHE = cache_dir()
if _CACHE is not None:
    jax.config.update("jax_compilation_cache_dir", _CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
