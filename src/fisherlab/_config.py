"""The JAX set-up ``import fisherlab`` does: a persistent compilation cache (and nothing else).

This module imports no JAX: ``import fisherlab`` (and so ``fisherlab --help``) stays fast,
and JAX is configured when it comes.

**Float64 is not set here.** Importing fisherlab leaves JAX's 64-bit mode
(``jax_enable_x64``, ``JAX_ENABLE_X64``) exactly as the user configured it: a network
trained in float32 in the same process keeps ``jnp.ones(3).dtype == float32``. fisherlab's
statistical functions turn 64-bit mode on *around their own computations* instead
(:mod:`fisherlab._precision`: ``jax.enable_x64``, thread-local, restored when the call
returns), and :func:`fisherlab.curvature` follows the parameters' dtype.

**Compilation cache.** Compiled kernels are kept on disk by JAX's persistent compilation
cache, so a second run of the same model shape (a second ``fisherlab fit`` on new data of
the same columns, say) loads them instead of compiling again. The cache lives in the
user's cache directory (:func:`platformdirs.user_cache_dir`: ``$XDG_CACHE_HOME/fisherlab/jax``,
by default ``~/.cache/fisherlab/jax`` on Linux, ``~/Library/Caches/fisherlab/jax`` on
macOS), or in ``$FISHERLAB_CACHE_DIR/jax``. It is not touched when the process has
already chosen a cache (``jax.config.jax_compilation_cache_dir`` set before, or
``JAX_COMPILATION_CACHE_DIR``), and it is off with ``FISHERLAB_NO_CACHE=1``. Every
kernel is stored (:data:`MIN_COMPILE_SECONDS` is 0, JAX's default is 1 s): a fit compiles
dozens of kernels of 0.01–0.5 s each, which together are most of a first run's time
(``fisherlab demo``: 4.5 s uncached, 3.2 s from the cache, about 250 kB on disk).
:func:`set_up_cache` runs at import when JAX is already imported, else just before the
first fisherlab module that needs JAX is imported (a one-shot import hook), so before
fisherlab compiles anything. JAX decides once per process, at its first compilation,
whether a cache is used: a process that compiles with JAX before it first uses fisherlab
runs uncached.

**Stored kernels.** Beside ``jax/``, ``kernels/`` (:func:`kernel_dir`) keeps the traced
kernels of built-in models as :mod:`jax.export` artifacts (:mod:`fisherlab.model._stored`),
so a second process skips tracing too; ``FISHERLAB_NO_CACHE=1`` turns both off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = [
    "JAX_FREE_MODULES",
    "MIN_COMPILE_SECONDS",
    "at_import",
    "cache_dir",
    "kernel_dir",
    "set_up_cache",
]

#: Kernels that compile faster than this are not written to the persistent cache.
MIN_COMPILE_SECONDS = 0.0

#: fisherlab's modules that import no JAX (with ``fisherlab.cli`` and its modules, which import
#: the others inside their commands): importing them does not set up JAX.
JAX_FREE_MODULES = frozenset(
    {
        "fisherlab._config",
        "fisherlab._errors",
        "fisherlab._format",
        "fisherlab._options",
        "fisherlab._precision",
        "fisherlab.models",
        "fisherlab.models._traits",
    }
)

_state = {"cache_done": False}


def _base_dir() -> str | None:
    """fisherlab's cache folder, or ``None`` with ``FISHERLAB_NO_CACHE=1`` (or no platformdirs)."""
    if os.environ.get("FISHERLAB_NO_CACHE", "") not in ("", "0"):
        return None
    base = os.environ.get("FISHERLAB_CACHE_DIR")
    if not base:
        try:
            import platformdirs
        except ImportError:  # pragma: no cover - a dependency; an installation without it runs uncached
            return None
        base = platformdirs.user_cache_dir("fisherlab", appauthor=False)
    return base


def cache_dir() -> str | None:
    """The persistent compilation cache fisherlab sets up, or ``None`` when it sets none."""
    base = _base_dir()
    if base is None:
        return None
    jax = sys.modules.get("jax")
    chosen = jax is not None and getattr(jax.config, "jax_compilation_cache_dir", None)
    if chosen or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None  # the process chose its own cache
    return os.path.join(base, "jax")


def kernel_dir() -> str | None:
    """The folder of exported kernels of built-in models (:mod:`fisherlab.model._stored`), or ``None``."""
    base = _base_dir()
    return None if base is None else os.path.join(base, "kernels")


def set_up_cache() -> None:
    """Import JAX and point its persistent compilation cache at :func:`cache_dir` (once per process)."""
    if _state["cache_done"]:
        return
    _state["cache_done"] = True
    _CacheHook.remove()
    import jax

    cache = cache_dir()
    if cache is not None:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)


def at_import() -> None:
    """What ``import fisherlab`` does: the compilation cache now (JAX loaded) or before JAX is needed.

    JAX's 64-bit mode is not touched (:mod:`fisherlab._precision` scopes it to fisherlab's calls).
    """
    if "jax" in sys.modules:  # JAX is loaded: configuring it is cheap
        set_up_cache()
        return
    _CacheHook.install()


class _CacheHook:
    """Runs :func:`set_up_cache` before the first of fisherlab's modules that use JAX is imported.

    A finder of :data:`sys.meta_path` (:class:`importlib.abc.MetaPathFinder`'s protocol) that
    finds nothing itself (the usual finders import the module), and removes itself once it has
    run; ``fisherlab.cli`` and :data:`JAX_FREE_MODULES` pass without it.
    """

    _installed: _CacheHook | None = None

    @classmethod
    def install(cls) -> None:
        if cls._installed is None:
            cls._installed = cls()
            sys.meta_path.insert(0, cls._installed)

    @classmethod
    def remove(cls) -> None:
        hook, cls._installed = cls._installed, None
        if hook is not None and hook in sys.meta_path:
            sys.meta_path.remove(hook)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith("fisherlab.") or fullname in JAX_FREE_MODULES:
            return None
        if fullname == "fisherlab.cli" or fullname.startswith("fisherlab.cli."):
            return None
        set_up_cache()
        return None
