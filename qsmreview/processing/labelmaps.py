"""Uploaded segmentations (FreeSurfer, SynthSeg, FSL FAST) to FAST tissue codes.

A user may upload a segmentation made elsewhere instead of letting us classify tissue. This
module translates its labels into the codes the rest of the pipeline uses, FSL FAST's
(0 background, 1 CSF, 2 GM, 3 WM), with a fixed, documented table, and reports what it did.

The label map must already be on the T2* grid; to bring one from T1 space use
:func:`qsmreview.processing.registration.apply_transform` with ``interpolation="nearest"``.

Pure library code: no Django, no file I/O.

References
----------
.. [1] Fischl B, Salat DH, Busa E, et al. Whole brain segmentation: automated labeling of
   neuroanatomical structures in the human brain. Neuron. 2002;33(3):341-355.
   doi:10.1016/S0896-6273(02)00569-X  (aseg; label names from ``FreeSurferColorLUT.txt``)
.. [2] Billot B, Greve DN, Puonti O, et al. SynthSeg: segmentation of brain MRI scans of any
   contrast and resolution without retraining. Med Image Anal. 2023;86:102789.
   doi:10.1016/j.media.2023.102789
.. [3] Zhang Y, Brady M, Smith S. Segmentation of brain MR images through a hidden Markov random
   field model and the expectation-maximization algorithm. IEEE Trans Med Imaging.
   2001;20(1):45-57. doi:10.1109/42.906424  (FAST)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recon.errors import ReconInputError

Scheme = Literal["freesurfer", "synthseg", "fast"]
OnUnknown = Literal["warn", "raise"]

BACKGROUND, CSF, GM, WM = 0, 1, 2, 3
FAST_NAMES = {BACKGROUND: "background", CSF: "CSF", GM: "GM", WM: "WM"}

# A label listed with code None is known but deliberately left out (set to 0), because its
# susceptibility is neither CSF's nor brain tissue's: choroid plexus calcifies (diamagnetic) and
# vessels hold deoxygenated blood (paramagnetic). Keeping them out of the CSF class keeps a CSF
# reference region clean.
_Entry = tuple[str, int | None]

#: FreeSurfer ``aseg`` / ``aparc+aseg`` labels (FreeSurferColorLUT.txt) -> FAST code.
FREESURFER_TABLE: dict[int, _Entry] = {
    0: ("Unknown", BACKGROUND),
    2: ("Left-Cerebral-White-Matter", WM),
    3: ("Left-Cerebral-Cortex", GM),
    4: ("Left-Lateral-Ventricle", CSF),
    5: ("Left-Inf-Lat-Vent", CSF),
    7: ("Left-Cerebellum-White-Matter", WM),
    8: ("Left-Cerebellum-Cortex", GM),
    9: ("Left-Thalamus (FreeSurfer <= 5)", GM),
    10: ("Left-Thalamus", GM),
    11: ("Left-Caudate", GM),
    12: ("Left-Putamen", GM),
    13: ("Left-Pallidum", GM),
    14: ("3rd-Ventricle", CSF),
    15: ("4th-Ventricle", CSF),
    16: ("Brain-Stem", WM),
    17: ("Left-Hippocampus", GM),
    18: ("Left-Amygdala", GM),
    24: ("CSF", CSF),
    26: ("Left-Accumbens-area", GM),
    28: ("Left-VentralDC", GM),
    30: ("Left-vessel", None),
    31: ("Left-choroid-plexus", None),
    41: ("Right-Cerebral-White-Matter", WM),
    42: ("Right-Cerebral-Cortex", GM),
    43: ("Right-Lateral-Ventricle", CSF),
    44: ("Right-Inf-Lat-Vent", CSF),
    46: ("Right-Cerebellum-White-Matter", WM),
    47: ("Right-Cerebellum-Cortex", GM),
    48: ("Right-Thalamus (FreeSurfer <= 5)", GM),
    49: ("Right-Thalamus", GM),
    50: ("Right-Caudate", GM),
    51: ("Right-Putamen", GM),
    52: ("Right-Pallidum", GM),
    53: ("Right-Hippocampus", GM),
    54: ("Right-Amygdala", GM),
    58: ("Right-Accumbens-area", GM),
    60: ("Right-VentralDC", GM),
    62: ("Right-vessel", None),
    63: ("Right-choroid-plexus", None),
    72: ("5th-Ventricle", CSF),
    # In MS, FreeSurfer labels most WM lesions as WM hypointensities: they are WM here.
    77: ("WM-hypointensities", WM),
    78: ("Left-WM-hypointensities", WM),
    79: ("Right-WM-hypointensities", WM),
    80: ("non-WM-hypointensities", GM),
    81: ("Left-non-WM-hypointensities", GM),
    82: ("Right-non-WM-hypointensities", GM),
    85: ("Optic-Chiasm", WM),
    251: ("CC_Posterior", WM),
    252: ("CC_Mid_Posterior", WM),
    253: ("CC_Central", WM),
    254: ("CC_Mid_Anterior", WM),
    255: ("CC_Anterior", WM),
}

#: Label ranges of the cortical parcellations and WM parcellation -> FAST code.
FREESURFER_RANGES: tuple[tuple[int, int, str, int], ...] = (
    (1000, 1035, "ctx-lh-* (aparc / DKT)", GM),
    (1100, 1181, "ctx-lh-* (aparc.a2005s)", GM),
    (2000, 2035, "ctx-rh-* (aparc / DKT)", GM),
    (2100, 2181, "ctx-rh-* (aparc.a2005s)", GM),
    (3000, 3035, "wm-lh-* (wmparc)", WM),
    (4000, 4035, "wm-rh-* (wmparc)", WM),
    (5001, 5002, "Left/Right-UnsegmentedWhiteMatter (wmparc)", WM),
    (11100, 11175, "ctx_lh_* (aparc.a2009s)", GM),
    (12100, 12175, "ctx_rh_* (aparc.a2009s)", GM),
    (13100, 13175, "wm_lh_* (wmparc a2009s)", WM),
    (14100, 14175, "wm_rh_* (wmparc a2009s)", WM),
)

#: Labels SynthSeg 2.0 writes (with ``--parc`` also the aparc cortical labels 1001-1035,
#: 2001-2035); they use FreeSurfer's numbering, so the FreeSurfer table applies to them.
SYNTHSEG_LABELS: frozenset[int] = frozenset(
    {0, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 26, 28}
    | {41, 42, 43, 44, 46, 47, 49, 50, 51, 52, 53, 54, 58, 60}
    | set(range(1001, 1036))
    | set(range(2001, 2036))
)

#: FAST ``*_seg`` / ``*_pveseg`` with three classes on a T1: already our codes.
FAST_TABLE: dict[int, _Entry] = {
    0: ("background", BACKGROUND),
    1: ("CSF", CSF),
    2: ("GM", GM),
    3: ("WM", WM),
}


@dataclass(frozen=True)
class LabelReport:
    """What :func:`labels_to_fast` did, for the job log and the user (JSON-friendly via
    :meth:`as_dict`).

    Attributes
    ----------
    scheme : str
        The scheme used.
    voxels_per_class : dict
        FAST class name -> voxel count in the output.
    mapped : list of dict
        One entry per input label present: ``label``, ``name``, ``fast`` (code or None when
        excluded), ``voxels``.
    excluded : dict
        Known labels set to 0 on purpose (vessels, choroid plexus) -> voxel count.
    unknown : dict
        Labels not in the scheme's table -> voxel count; set to 0.
    warnings : list of str
        Human-readable notes (unknown labels, suspicious content).
    """

    scheme: str
    voxels_per_class: dict[str, int]
    mapped: list[dict[str, Any]]
    excluded: dict[int, int]
    unknown: dict[int, int]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "voxels_per_class": dict(self.voxels_per_class),
            "mapped": [dict(m) for m in self.mapped],
            "excluded": {str(k): v for k, v in self.excluded.items()},
            "unknown": {str(k): v for k, v in self.unknown.items()},
            "warnings": list(self.warnings),
        }


def labels_to_fast(
    labels: np.ndarray,
    *,
    scheme: Scheme,
    on_unknown: OnUnknown = "warn",
) -> tuple[np.ndarray, LabelReport]:
    """Translate a segmentation into FAST tissue codes.

    Parameters
    ----------
    labels : (X, Y, Z) integer-valued array
        The uploaded segmentation on the T2* grid. Float arrays are accepted when every value is
        a whole number (NIfTI label maps are often stored as float).
    scheme : {"freesurfer", "synthseg", "fast"}
        ``"freesurfer"``: ``aseg``, ``aparc+aseg``, ``aparc.a2009s+aseg``, ``aparc.DKTatlas+aseg``
        or ``wmparc``. ``"synthseg"``: SynthSeg output, with or without ``--parc``.
        ``"fast"``: FSL FAST ``_seg`` or ``_pveseg`` (three classes: 0-3).
    on_unknown : {"warn", "raise"}
        Labels missing from the scheme's table become 0 and are listed in the report
        (``"warn"``), or make the call fail (``"raise"``).

    Returns
    -------
    fast : (X, Y, Z) uint8 array
        0 background (and excluded/unknown labels), 1 CSF, 2 GM, 3 WM.
    report : LabelReport

    Raises
    ------
    ReconInputError
        On a non-3D or non-numeric map, non-integer values (a label map resampled with linear
        interpolation), negative labels, a map that does not look like the chosen scheme, an
        unknown scheme, or unknown labels with ``on_unknown="raise"``.

    Examples
    --------
    >>> fast, report = labels_to_fast(aseg_on_t2s, scheme="freesurfer")  # doctest: +SKIP
    >>> report.unknown
    {}
    """
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise ReconInputError(f"label map must be 3D, got {arr.ndim}D with shape {arr.shape}")
    if scheme not in ("freesurfer", "synthseg", "fast"):
        raise ReconInputError(
            f"scheme must be 'freesurfer', 'synthseg' or 'fast', got {scheme!r}"
        )
    if on_unknown not in ("warn", "raise"):
        raise ReconInputError(f"on_unknown must be 'warn' or 'raise', got {on_unknown!r}")
    ints = _as_integer_labels(arr)

    values, inverse, counts = np.unique(ints, return_inverse=True, return_counts=True)
    present = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    _check_plausible(scheme, present)

    codes = np.zeros(len(values), dtype=np.uint8)
    mapped: list[dict[str, Any]] = []
    excluded: dict[int, int] = {}
    unknown: dict[int, int] = {}
    for i, v in enumerate(values.tolist()):
        entry = _lookup(scheme, v)
        if entry is None:
            unknown[v] = present[v]
            continue
        name, code = entry
        mapped.append({"label": v, "name": name, "fast": code, "voxels": present[v]})
        if code is None:
            excluded[v] = present[v]
        else:
            codes[i] = code

    warnings: list[str] = []
    if unknown:
        listing = ", ".join(f"{k} ({n} voxels)" for k, n in sorted(unknown.items()))
        message = f"labels not in the {scheme} table: {listing}"
        if on_unknown == "raise":
            raise ReconInputError(message)
        warnings.append(message + "; set to background")
    if excluded:
        listing = ", ".join(
            f"{k} {m['name']}" for k in sorted(excluded) for m in mapped if m["label"] == k
        )
        warnings.append(f"left out on purpose (neither CSF nor tissue susceptibility): {listing}")

    fast = codes[inverse.reshape(ints.shape)]
    class_counts = np.bincount(fast.ravel(), minlength=4)
    for code in (CSF, GM, WM):
        if class_counts[code] == 0:
            warnings.append(f"no {FAST_NAMES[code]} voxels in the result")
    report = LabelReport(
        scheme=scheme,
        voxels_per_class={FAST_NAMES[c]: int(class_counts[c]) for c in range(4)},
        mapped=mapped,
        excluded=excluded,
        unknown=unknown,
        warnings=warnings,
    )
    return fast, report


def _as_integer_labels(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ReconInputError(f"label map must hold numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ReconInputError("label map contains NaN or infinite values")
        frac = arr != np.round(arr)
        if frac.any():
            raise ReconInputError(
                f"label map has {int(frac.sum())} non-integer values (e.g. "
                f"{float(arr[frac].flat[0]):g}); was it resampled with linear interpolation? "
                "Resample label maps with nearest neighbour"
            )
    ints = arr.astype(np.int64)
    if ints.min() < 0:
        raise ReconInputError(f"label map has negative labels (min {int(ints.min())})")
    return ints


def _lookup(scheme: str, label: int) -> _Entry | None:
    if scheme == "fast":
        return FAST_TABLE.get(label)
    if scheme == "synthseg" and label not in SYNTHSEG_LABELS:
        return None
    if label in FREESURFER_TABLE:
        return FREESURFER_TABLE[label]
    for lo, hi, name, code in FREESURFER_RANGES:
        if lo <= label <= hi:
            return (name, code)
    return None


def _check_plausible(scheme: str, present: dict[int, int]) -> None:
    """Catch the commonest upload mistake: the wrong scheme for the file."""
    nonzero = set(present) - {0}
    if not nonzero:
        raise ReconInputError("label map is empty (all voxels are 0)")
    if scheme == "fast" and max(nonzero) > 3:
        raise ReconInputError(
            f"a FAST segmentation has labels 0-3, this map has labels up to {max(nonzero)}; "
            "is it a FreeSurfer or SynthSeg map?"
        )
    if scheme in ("freesurfer", "synthseg") and nonzero <= {1, 2, 3}:
        raise ReconInputError(
            f"this map has only labels {sorted(nonzero)}, as a FAST segmentation does; a "
            f"{scheme} map has many more (e.g. 2/41 WM, 3/42 cortex, 4/43 ventricles). "
            "Choose scheme='fast'"
        )
