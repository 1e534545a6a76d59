"""recon: MEDI quantitative susceptibility mapping in numpy/scipy.

Standalone: imports no Django. Arrays in, arrays out; voxel sizes in mm, echo times in s, B0 in T,
susceptibility in ppm. Every step takes ``(field, mask, voxel_size, *, keywords)``.

>>> from recon import make_phantom, qsm
>>> p = make_phantom((96, 96, 48), (1.2, 1.3, 2.0))                        # doctest: +SKIP
>>> r = qsm(p.magnitude, p.phase, p.te, p.b0, p.voxel_size, affine=p.affine)  # doctest: +SKIP
>>> r.chi_ppm                                                                  # doctest: +SKIP
"""

from recon.bgremove import pdf, vsharp
from recon.dipole import dipole_kernel, forward_field
from recon.echofit import EchoFit, fit_echoes
from recon.errors import ReconInputError
from recon.geometry import b0_direction_from_affine, voxel_size_from_affine
from recon.mask import brain_mask, csf_mask, erode_mask
from recon.metrics import LesionAgreement, lesion_agreement, nrmse, relative_susceptibility
from recon.phantom import Phantom, local_field, make_phantom
from recon.phase import phase_to_radians
from recon.pipeline import QSMResult, qsm
from recon.unwrap import laplacian_unwrap

__version__ = "0.1.0"

__all__ = [
    "EchoFit",
    "LesionAgreement",
    "Phantom",
    "QSMResult",
    "ReconInputError",
    "b0_direction_from_affine",
    "brain_mask",
    "csf_mask",
    "dipole_kernel",
    "erode_mask",
    "fit_echoes",
    "forward_field",
    "laplacian_unwrap",
    "lesion_agreement",
    "local_field",
    "make_phantom",
    "nrmse",
    "pdf",
    "phase_to_radians",
    "qsm",
    "relative_susceptibility",
    "voxel_size_from_affine",
    "vsharp",
]
