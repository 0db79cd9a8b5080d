"""Data: checking observations and covariates (rows, NaN/inf, shapes), row blocks, bundled datasets.

``challenger.csv`` (the bundled default data of ``fisherlab demo``) lives here;
:func:`fisherlab.datasets.challenger` loads it.
"""

from ._blocks import BLOCK_ROWS as BLOCK_ROWS, sum_over_blocks as sum_over_blocks
from ._prepare import (
    Data as Data,
    as_observations as as_observations,
    data_dtype as data_dtype,
    prepare_data as prepare_data,
)

__all__ = ["BLOCK_ROWS", "Data", "as_observations", "data_dtype", "prepare_data", "sum_over_blocks"]
