"""One number and p-value format in text, HTML and Rich; Rich summaries never split or cut a number."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import fisherlab as fl
from fisherlab._format import PVALUE_FLOOR, cell_text, format_number, format_pvalue


def test_pvalue_format_is_r_format_pval_at_three_digits() -> None:
    assert format_pvalue(0.5) == "0.5"
    assert format_pvalue(0.0123456) == "0.0123"
    assert format_pvalue(3.2e-7) == "3.2e-07"
    assert format_pvalue(PVALUE_FLOOR) == "2.22e-16"
    assert format_pvalue(1e-300) == "<2e-16"
    assert format_pvalue(0.0) == "<2e-16"
    assert format_pvalue(float("nan")) == "NA"
    assert format_number(float("nan")) == ""
    assert format_number(-0.052535149) == "-0.0525351"


@pytest.fixture(scope="module")
def summary() -> fl.Summary:
    rng = np.random.default_rng(3)
    n = 80
    df = pd.DataFrame({"temperature": rng.normal(size=n), "group": rng.choice(["a", "b", "c"], n)})
    df["y"] = rng.poisson(np.exp(1.0 + 0.8 * df["temperature"]))
    res = fl.glm("y ~ temperature + C(group, Treatment('b'))", df, family="poisson")
    return res.summary()


def test_text_html_and_rich_write_the_same_p_values(summary: fl.Summary) -> None:
    text, page = str(summary), summary._repr_html_()
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(summary)
    rich_text = console.export_text()
    for p in summary.table["p"]:
        shown = format_pvalue(p)
        assert shown in text and shown in page.replace("&lt;", "<") and shown in rich_text
    assert "<2e-16" in text  # the slope's p-value is far below the floor


@pytest.mark.parametrize("width", [80, 60])
def test_rich_summary_stacks_instead_of_splitting_a_number(summary: fl.Summary, width: int) -> None:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(summary)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text
    for col in summary.table.columns:
        for value in summary.table[col]:
            cell = cell_text(col, value)
            assert any(cell in line for line in lines), (col, cell)
    assert sum("parameter" in line for line in lines) >= 2  # stacked: the names repeat
