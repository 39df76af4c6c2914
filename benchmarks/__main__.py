"""``python -m benchmarks``: see :mod:`benchmarks.runner` and ``benchmarks/README.md``."""

import sys

from benchmarks.runner import main

sys.exit(main())
