"""``python -m qsmreview.stats``: the command line of :mod:`qsmreview.stats.cli`."""

from qsmreview.stats.cli import main

raise SystemExit(main())
