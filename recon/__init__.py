"""recon: MEDI quantitative susceptibility mapping in numpy/scipy.

Standalone: imports no Django. Arrays in, arrays out; voxel sizes in mm, echo times in s, B0 in T,
susceptibility in ppm.
"""

__version__ = "0.1.0"
