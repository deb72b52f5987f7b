"""``python -m epic_zoo.hub``: see :mod:`epic_zoo.hub.cli`."""

import sys

from epic_zoo.hub.cli import main

if __name__ == "__main__":
    sys.exit(main())
