"""``python -m recon``: the command line of :mod:`recon.cli`."""

from recon.cli import main

raise SystemExit(main())
