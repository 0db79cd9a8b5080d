"""The command line is fisherlab's own process: it runs JAX in 64-bit mode throughout.

A library call of fisherlab turns 64-bit mode on around its own computations only
(:mod:`fisherlab._precision`), leaving the user's JAX as configured. The command line has no
other user code to leave alone but a ``--model`` file, which is written for fisherlab: each
command turns 64-bit mode on for the process once its options are checked (so that
``fisherlab --help`` and argument errors import no JAX), before it reads data, runs the model
file or computes, so constants the model file makes at import are float64 as well.
"""

from __future__ import annotations

__all__ = ["use_float64"]


def use_float64() -> None:
    """Import JAX and turn its 64-bit mode on for the whole process."""
    import jax

    jax.config.update("jax_enable_x64", True)
