"""A fast first result (issue 11): help and argument errors without JAX; the lazy package root.

``import fisherlab`` imports no JAX: the public names are imported on first use
(PEP 562), JAX's 64-bit mode is left as the user set it (fisherlab turns it on around its
own calls, ``tests/test_precision.py``), and the command line checks its options before its
commands import what they compute with. Startup is a property of a fresh process, so most
cases run in a subprocess.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fisherlab as fl
from fisherlab import models

# Modules a help or argument error must not import: JAX and what the commands compute with.
HEAVY = ("jax", "jaxlib", "numpyro", "numpy", "pandas", "scipy", "matplotlib", "formulaic")


def _env(**extra: str) -> dict[str, str]:
    """The test process's environment without its JAX and fisherlab settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "FISHERLAB_", "XLA_"))}
    env["FISHERLAB_NO_CACHE"] = "1"
    env.update(extra)
    return env


def _python(code: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=_env(**extra), capture_output=True, text=True
    )


# --------------------------------------------------------------------------- the command line


ARGUMENT_CASES = [
    (["--help"], 0, "Usage: fisherlab"),
    ([], 2, ""),  # no command: the help, then status 2
    (["fit", "--help"], 0, "Wilkinson formula"),
    (["check", "--help"], 0, "Information-matrix test"),
    (["info", "--help"], 0, "Fisher information of one observation"),
    (["demo", "--help"], 0, "Challenger"),
    (["fit", "d.csv", "--bogus"], 2, "No such option: --bogus"),
    (["fit"], 2, "Missing argument 'data'"),
    (["info", "--param", "a=1"], 2, "Missing option '--dist'"),
    (["fit", "d.csv", "--cov", "nope"], 2, "--cov 'nope' is not one of observed"),
    (["fit", "d.csv", "--dispersion", "nope"], 2, "--dispersion 'nope'"),
    (["fit", "d.csv", "--level", "2"], 2, "--level must be in (0, 1)"),
    (["fit", "d.csv", "--hc", "HC9", "--cov", "sandwich"], 2, "--hc 'HC9' is not one of"),
    (["check", "d.csv", "--variant", "nope"], 2, "--variant 'nope'"),
    (["info", "--dist", "Normal", "--param", "loc=0", "--method", "nope"], 2, "--method 'nope'"),
    (["info", "--dist", "Normal", "--param", "loc=0", "--n", "0"], 2, "--n must be a positive"),
    (["nosuchcommand"], 2, "No such command 'nosuchcommand'"),
]


def test_help_and_argument_errors_import_no_jax() -> None:
    """Every help page and argument error, in one fresh process: right status and text, no JAX."""
    code = f"""
        import contextlib, io, json, sys
        from fisherlab.cli import main
        out = []
        for argv in {[argv for argv, _, _ in ARGUMENT_CASES]!r}:
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                status = main(argv)
            out.append([status, stdout.getvalue() + stderr.getvalue()])
        print(json.dumps({{"runs": out, "imported": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """
    proc = _python(code, COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.splitlines()[-1])
    assert doc["imported"] == [], f"a help or argument error imported {doc['imported']}"
    for (argv, status, text), (got_status, got_text) in zip(ARGUMENT_CASES, doc["runs"], strict=True):
        assert got_status == status, (argv, got_text)
        assert text in " ".join(got_text.split()), (argv, got_text)
        if status == 2 and argv:
            assert "Traceback" not in got_text and got_text.count("fisherlab: error:") == 1, (argv, got_text)


def test_console_script_help_imports_no_jax() -> None:
    """``fisherlab --help`` through the launcher: the help on stdout, no JAX module imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "_fisherlab_launch", "--help"],
        env=_env(COLUMNS="120"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: fisherlab" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "fisherlab.cli._app" in imported  # -X importtime saw the command's modules
    assert not {m for m in imported if m.split(".")[0] in HEAVY}, sorted(
        m for m in imported if m.split(".")[0] in HEAVY
    )


def test_help_text_from_the_family_traits() -> None:
    """The help's family facts (read without JAX) are the full records' facts."""
    from fisherlab.cli import _choices

    assert _choices.FAMILY_NAMES == [f.value for f in models.FAMILIES]
    assert _choices.PEARSON_FAMILIES == [f.value for f, r in models.FAMILIES.items() if r.pearson]
    assert _choices.extra_parameters() == (
        "sigma for gaussian, shape for gamma and inverse_gaussian, alpha for negative_binomial"
    )
    for family, record in models.FAMILIES.items():
        traits = models.FAMILY_TRAITS[family]
        assert traits.extra == (record.extra.name if record.extra is not None else None)
        assert traits.pearson is record.pearson


# --------------------------------------------------------------------------- the lazy root


def _type_checking_imports(path: Path) -> dict[str, str]:
    """``{name: module}`` of the ``if TYPE_CHECKING:`` imports of a package's ``__init__.py``."""
    tree = ast.parse(path.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    )
    out: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name} is not re-exported as itself"
            module = "." * node.level + (node.module or "")
            out[alias.name] = f"{module}{alias.name}" if node.module is None else module
    return out


def test_lazy_tables_match_the_type_checking_imports() -> None:
    """What type checkers see is what the package imports at run time, name for name."""
    assert _type_checking_imports(Path(fl.__file__)) == fl._LAZY
    assert fl.__all__ == sorted([*fl._LAZY, "__version__"])
    lazy_models = {name: f".{module}" for name, module in models._LAZY.items()}
    assert _type_checking_imports(Path(models.__file__)) == lazy_models
    assert set(models.__all__) == {*models._LAZY, "FAMILY_TRAITS", "Family", "FamilyTraits"}


def test_every_public_name_is_the_defining_modules_object() -> None:
    for name, where in fl._LAZY.items():
        module = importlib.import_module(where, "fisherlab")
        expected = module if where == f".{name}" else getattr(module, name)
        assert getattr(fl, name) is expected, name
    for name, where in models._LAZY.items():
        assert getattr(models, name) is getattr(importlib.import_module(f"fisherlab.models.{where}"), name)
    assert set(fl.__all__) <= set(dir(fl)) and set(models.__all__) <= set(dir(models))
    with pytest.raises(AttributeError, match="has no attribute 'fitt'"):
        fl.fitt  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        models.nope  # noqa: B018


def test_import_alone_imports_no_jax_and_names_load_on_use() -> None:
    proc = _python(
        """
        import sys
        import fisherlab as fl
        from fisherlab import FisherlabError, CovKind
        assert "jax" not in sys.modules, "import fisherlab imported JAX"
        from fisherlab import glm
        import jax.numpy as jnp
        assert fl.fit is sys.modules["fisherlab.inference"].fit
        assert fl.models.glm("poisson").family is fl.models.Family.POISSON
        assert hasattr(fl.dist, "Normal") and fl.datasets.challenger().shape[0] == 23
        assert issubclass(fl.SingularInformationError, FisherlabError)
        print(jnp.ones(1).dtype, glm.__module__)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["float32", "fisherlab.formula._glm"]  # JAX's own default, untouched


# --------------------------------------------------------------------------- precision and the cache


INFO = "fl.fisher(fl.Model(lambda th, x: fl.dist.Normal(th['mu'], th['sigma'])), {'mu': 0.0, 'sigma': 3.0})"
# se of sigma for one observation: sigma / sqrt(2); exact to float64's precision only
SE_SIGMA = 3.0 / 2**0.5


def test_jax_after_fisherlab_stays_32_bit_and_the_cache_comes_first(tmp_path: Path) -> None:
    """fisherlab first: no ``JAX_ENABLE_X64`` is set, the cache is set before the first JAX module
    (even one imported directly), JAX stays in its 32-bit default and fisherlab computes in float64."""
    proc = _python(
        f"""
        import os, sys
        import fisherlab as fl
        assert "JAX_ENABLE_X64" not in os.environ and "jax" not in sys.modules
        from fisherlab.information import fisher  # a submodule, not through fl.<name>
        import jax, jax.numpy as jnp
        assert "JAX_ENABLE_X64" not in os.environ
        print(jnp.ones(1).dtype, jax.config.jax_compilation_cache_dir)
        F = {INFO}  # loads model/, dist/, backends/ ... lazily
        print(jax.config.jax_enable_x64, jnp.ones(1).dtype, F.matrix.dtype, repr(F.se()["sigma"]))
        """,
        FISHERLAB_CACHE_DIR=str(tmp_path),
        FISHERLAB_NO_CACHE="0",
    )
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()[-2:]
    assert first.split() == ["float32", str(tmp_path / "jax")]
    off, dtype, matrix_dtype, se = second.split()
    assert (off, dtype, matrix_dtype) == ("False", "float32", "float64")
    assert float(se) == pytest.approx(SE_SIGMA, rel=1e-14)  # computed in float64 all the same


def test_jax_before_fisherlab_keeps_its_setting() -> None:
    """JAX first, 64-bit on by the user: fisherlab neither turns it off nor touches the environment."""
    proc = _python(
        f"""
        import os
        import jax
        jax.config.update("jax_enable_x64", True)
        import fisherlab as fl
        import jax.numpy as jnp
        assert "JAX_ENABLE_X64" not in os.environ
        F = {INFO}
        print(jnp.ones(1).dtype, jax.config.jax_enable_x64, F.matrix.dtype, repr(F.se()["sigma"]))
        """
    )
    assert proc.returncode == 0, proc.stderr
    *flags, se = proc.stdout.split()
    assert flags == ["float64", "True", "float64"]
    assert float(se) == pytest.approx(SE_SIGMA, rel=1e-14)


@pytest.mark.parametrize(("value", "dtype"), [("0", "float32"), ("1", "float64")])
def test_jax_enable_x64_in_the_environment_is_respected(value: str, dtype: str) -> None:
    """``JAX_ENABLE_X64`` given by the user decides the user's JAX, before and after fisherlab's
    calls, and fisherlab leaves the variable as it found it; fisherlab's results are float64 both ways."""
    proc = _python(
        f"""
        import os
        import fisherlab as fl
        import jax.numpy as jnp
        before = jnp.ones(1).dtype
        F = {INFO}
        print(fl.param_names({{"a": 1.0}}), before, jnp.ones(1).dtype, os.environ["JAX_ENABLE_X64"])
        print(repr(F.se()["sigma"]))
        """,
        JAX_ENABLE_X64=value,
    )
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()[-2:]
    assert first.split() == ["['a']", dtype, dtype, value]
    assert float(second) == pytest.approx(SE_SIGMA, rel=1e-14)
