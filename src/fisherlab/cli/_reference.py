"""The command as a Click object, for the documentation's generated CLI reference (mkdocs-click).

``docs/reference/cli.md`` renders every command, option and help text from :data:`click_app`,
so the reference is the app's own. Only the docs build imports this module.
"""

from __future__ import annotations

import typer.main

from ._app import app

__all__ = ["click_app"]

click_app = typer.main.get_command(app)
