"""The one error type of :mod:`recon`: bad input, said in words a user can act on."""


class ReconInputError(ValueError):
    """Input that the pipeline cannot use (mismatched grids, NaNs, phase out of range, ...).

    The CLI turns it into a message on stderr and exit code 2; the web app turns it into HTTP 400.
    """
