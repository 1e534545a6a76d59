"""The one error type of the lesion numerics: bad input, said in words a user can act on."""

from __future__ import annotations


class LesionInputError(ValueError):
    """Input the lesion analysis cannot use: grids that differ, a mask that is not binary, tissue
    labels that are not FSL FAST codes, NaN susceptibility inside the QSM mask, fewer than two
    raters, a vote anchored outside its rater's mask, a bad parameter.

    The CLI turns it into ``error: <message>`` on stderr and exit status 2; the web app turns it
    into a domain error (HTTP 400) with the same message.
    """
