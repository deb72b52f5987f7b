"""``python -m epic_zoo.bench``."""

import sys

from epic_zoo.bench.cli import main

sys.exit(main())
