"""Data: sources of rows (``fl.data.chunks``), checks of observations and covariates, row blocks.

Public (``fl.data``): :func:`chunks`, :class:`Chunks`, :func:`from_parquet` and
:class:`ParquetSource`, :func:`from_arrays` and :class:`ArraySource` (memory-mapped arrays),
:func:`from_dask` and :class:`DaskSource` (sums on a Dask cluster's workers); the table
sources that :func:`fisherlab.glm` reads (:class:`TableSource`:
:func:`from_parquet` without ``y=``, :func:`from_csv` (:class:`CsvSource`), :func:`frames`
(:class:`FrameSource`); ``fl.glm`` reads a dask DataFrame one partition at a time), and
:class:`StreamedData` (``res.data`` of a fit on a source: ``res.data.source``). The rest
serves fisherlab's other layers: :func:`prepare_data` (rows, NaN/inf, shapes, dtypes),
:func:`sum_over_blocks`.
``challenger.csv`` (the bundled default data of ``fisherlab demo``) lives here;
:func:`fisherlab.datasets.challenger` loads it.
"""

from ._blocks import BLOCK_ROWS as BLOCK_ROWS, sum_over_blocks as sum_over_blocks
from ._chunks import Chunks as Chunks, StreamedData as StreamedData, chunks as chunks
from ._csv import CsvSource as CsvSource, from_csv as from_csv
from ._dask import (
    ArraySource as ArraySource,
    DaskSource as DaskSource,
    from_arrays as from_arrays,
    from_dask as from_dask,
)
from ._parquet import ParquetSource as ParquetSource, from_parquet as from_parquet
from ._prepare import (
    Data as Data,
    as_observations as as_observations,
    data_dtype as data_dtype,
    prepare_data as prepare_data,
)
from ._tables import FrameSource as FrameSource, TableSource as TableSource, frames as frames

__all__ = [
    "BLOCK_ROWS",
    "ArraySource",
    "Chunks",
    "CsvSource",
    "DaskSource",
    "Data",
    "FrameSource",
    "ParquetSource",
    "StreamedData",
    "TableSource",
    "as_observations",
    "chunks",
    "data_dtype",
    "frames",
    "from_arrays",
    "from_csv",
    "from_dask",
    "from_parquet",
    "prepare_data",
    "sum_over_blocks",
]
