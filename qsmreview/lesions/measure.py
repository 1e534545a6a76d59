"""Susceptibility of each lesion or portion and of its reference ROI.

For every ROI the mean, the standard deviation (sample SD, ``ddof=1``) and the voxel count of the
QSM map (ppm) over its voxels inside the QSM mask; the **relative susceptibility** of a lesion or
portion is its mean minus its reference's mean (ppm), the quantity Wisnieff et al. (2015) report.

Missing values are explicit: a statistic that cannot be computed (no QSM, no voxel, an SD of one
voxel) is ``None``, never NaN or an exception, so tables and JSON show an empty cell.
No Django, no file I/O.

References
----------
Wisnieff C, Ramanan S, Olesik J, Gauthier S, Wang Y, Pitt D. Quantitative susceptibility mapping
(QSM) of white matter multiple sclerosis lesions: interpreting positive susceptibility and the
presence of iron. Magn Reson Med 2015;74:564-570. doi:10.1002/mrm.25420
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoiStats:
    """Susceptibility over one ROI (ppm). ``mean`` / ``sd`` are None when not computable."""

    n_voxels: int
    mean: float | None
    sd: float | None


def roi_stats(qsm: np.ndarray | None, roi: np.ndarray) -> RoiStats:
    """Mean, sample SD (``ddof=1``) and count of ``qsm`` over the voxels where ``roi`` is True.

    Parameters
    ----------
    qsm : array or None
        Susceptibility in ppm; None gives ``mean`` and ``sd`` None (and the count).
    roi : bool array
        Same shape as ``qsm`` (or any shape when ``qsm`` is None).

    Returns
    -------
    RoiStats
        ``mean`` None for no voxel, ``sd`` None for fewer than two voxels; float64 sums.
    """
    n = int(np.count_nonzero(roi))
    if qsm is None or n == 0:
        return RoiStats(n, None, None)
    values = np.asarray(qsm)[roi].astype(np.float64)
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else None
    return RoiStats(n, mean, sd)


def relative(lesion: RoiStats, reference: RoiStats) -> float | None:
    """Lesion mean minus reference mean (ppm); None when either is missing."""
    if lesion.mean is None or reference.mean is None:
        return None
    return lesion.mean - reference.mean
