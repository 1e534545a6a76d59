"""Background field removal: the field of sources outside the brain mask is removed.

Both methods share the call order ``(field, mask, voxel_size, *, ...)`` and return the local
field in the unit of the input field (Hz, rad/s or rad: the operations are linear).
"""

from recon.bgremove.pdf import pdf
from recon.bgremove.vsharp import vsharp

__all__ = ["pdf", "vsharp"]
