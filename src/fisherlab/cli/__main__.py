"""``python -m fisherlab.cli``: the ``fisherlab`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
