"""Process-wide JAX configuration fisherlab needs: float64 arithmetic.

Covariances come from inverting ill-conditioned matrices, so fisherlab turns on
``jax_enable_x64`` when it is imported. Float32 for large networks: pass float32
parameters and data explicitly (JAX keeps the dtype you give it), or set
``JAX_ENABLE_X64=0``-style configuration after import with
``jax.config.update("jax_enable_x64", False)`` for the whole process.
"""

import jax

jax.config.update("jax_enable_x64", True)
