"""Small real datasets bundled with fisherlab, with their sources."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["challenger"]


def challenger() -> pd.DataFrame:
    """Space Shuttle O-ring thermal distress and launch temperature, 23 flights before Challenger.

    Columns: ``temperature`` (°F at launch), ``damaged`` (field-joint O-rings, of 6,
    with thermal distress), ``incident`` (1 if any O-ring was damaged). Rows are
    sorted by temperature.

    Source: Report of the Presidential Commission on the Space Shuttle Challenger
    Accident (1986), Vol. 1, p. 146 (a U.S. government work, public domain);
    analysed in Dalal, Fowlkes & Hoadley (1989), "Risk analysis of the space
    shuttle: pre-Challenger prediction of failure", JASA 84, 945–957.

    Examples:
        >>> import fisherlab as fl
        >>> df = fl.datasets.challenger()
        >>> len(df), int(df["incident"].sum()), int(df["damaged"].sum())
        (23, 7, 11)
    """
    with resources.files("fisherlab.data").joinpath("challenger.csv").open("r") as fh:
        return pd.read_csv(fh)
