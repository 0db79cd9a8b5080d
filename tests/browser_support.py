"""Headless Chromium for the tests that look at HTML: the report and the documentation site.

Chromium comes from Debian's package (`apt-get install chromium`, which `.ci/run` does); tests skip
with that reason where it is missing. It starts with the flags that keep it off the network
(this machine's network is closed; without them it retries Google's hosts at every start) and a
fresh profile per call.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

__all__ = [
    "CHROMIUM_TIMEOUT_S",
    "MIN_PIXEL_STD",
    "OFFLINE_FLAGS",
    "chromium",
    "console_errors",
    "headless",
    "pixels",
]

CHROMIUM_TIMEOUT_S = 90
MIN_PIXEL_STD = 0.05  # a blank (single-colour) page has std 0; text and figures give ~0.2

OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)  # fmt: skip


def chromium() -> str:
    """Path of the Chromium binary, or skip the test naming how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    pytest.skip("chromium not installed (Debian: apt-get install chromium); CI's .ci/run installs it")


def headless(url: str, *flags: str, workdir: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` with extra ``flags``; fails the test on a non-zero exit."""
    profile = tempfile.mkdtemp(dir=workdir)
    cmd = [chromium(), *OFFLINE_FLAGS, f"--user-data-dir={profile}", *flags, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def console_errors(stderr: str) -> list[str]:
    """The page's console messages and uncaught errors in Chromium's log."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def pixels(png: pathlib.Path):  # -> np.ndarray (H, W, channels), floats in [0, 1]
    """A screenshot's pixels."""
    import matplotlib.image

    return matplotlib.image.imread(str(png))
