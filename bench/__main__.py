"""``python -m bench``: the suite (see bench/suite.py for its options)."""

import sys

from bench.suite import main

sys.exit(main())
