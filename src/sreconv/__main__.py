"""``python -m sreconv``: the ``sreconv`` command line (see :mod:`sreconv.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
