"""Dipole inversion: local field to susceptibility (MEDI, two solvers of one objective)."""

from recon.inversion.edges import edge_mask
from recon.inversion.gradient import divergence, gradient
from recon.inversion.medi import MEDIResult, medi, medi_objective

__all__ = ["MEDIResult", "divergence", "edge_mask", "gradient", "medi", "medi_objective"]
