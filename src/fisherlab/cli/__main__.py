"""``python -m fisherlab.cli``: the ``fisherlab`` command (signals handled once ``fisherlab`` is imported)."""

from . import run

if __name__ == "__main__":
    run()
