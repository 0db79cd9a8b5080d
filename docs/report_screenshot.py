"""Remake ``docs/assets/report.png``, the report screenshot on the Getting started page.

    python docs/report_screenshot.py

Runs ``fisherlab demo`` into a scratch directory and has headless Chromium (Debian's package)
photograph the top of its ``report.html``, started as the tests start it
(``tests/browser_support.py``, so the test extras must be installed). Nothing is fetched: the
report is one file, and Chromium starts with its background networking off.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "assets" / "report.png"


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("google-chrome")
    if browser is None:
        print("chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import OFFLINE_FLAGS  # the flags the tests start Chromium with
    from fisherlab.cli import main as fisherlab

    with tempfile.TemporaryDirectory() as tmp:
        if fisherlab(["demo", "--out", tmp]) != 0:
            return 1
        report = pathlib.Path(tmp, "report.html").as_uri()
        profile = f"--user-data-dir={pathlib.Path(tmp, 'profile')}"
        size = ["--hide-scrollbars", "--window-size=1200,1500"]
        shot = [browser, *OFFLINE_FLAGS, *size, profile, f"--screenshot={OUT}", report]
        subprocess.run(shot, check=True, capture_output=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
