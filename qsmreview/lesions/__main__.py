"""``python -m qsmreview.lesions``: see :mod:`qsmreview.lesions.cli`."""

from qsmreview.lesions.cli import main

raise SystemExit(main())
