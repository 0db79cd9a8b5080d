"""Data: sources of rows (``fl.data.chunks``), checks of observations and covariates, row blocks.

Public (``fl.data``): :func:`chunks`, :class:`Chunks`, :func:`from_parquet` and
:class:`ParquetSource`. The rest serves fisherlab's other
layers: :func:`prepare_data` (rows, NaN/inf, shapes, dtypes), :func:`sum_over_blocks`.
``challenger.csv`` (the bundled default data of ``fisherlab demo``) lives here;
:func:`fisherlab.datasets.challenger` loads it.
"""

from ._blocks import BLOCK_ROWS as BLOCK_ROWS, sum_over_blocks as sum_over_blocks
from ._chunks import Chunks as Chunks, chunks as chunks
from ._parquet import ParquetSource as ParquetSource, from_parquet as from_parquet
from ._prepare import (
    Data as Data,
    as_observations as as_observations,
    data_dtype as data_dtype,
    prepare_data as prepare_data,
)

__all__ = [
    "BLOCK_ROWS",
    "Chunks",
    "Data",
    "ParquetSource",
    "as_observations",
    "chunks",
    "data_dtype",
    "from_parquet",
    "prepare_data",
    "sum_over_blocks",
]
