"""The lesion table's columns (no heavy imports: the web process reads them at start-up)."""

from __future__ import annotations

#: The lesion table's columns that every consumer reads (the issue's and the statistics' table),
#: in order (one row per lesion, or per portion of a mixed lesion).
CORE_COLUMNS = (
    "subject",
    "lesion",
    "lesion_type",
    "portion",
    "n_voxels",
    "volume_mm3",
    "cortical_fraction",
    "raters",
    "lesion_mean_ppm",
    "lesion_sd_ppm",
    "reference_mean_ppm",
    "reference_sd_ppm",
    "reference_n_voxels",
    "relative_susceptibility_ppm",
)
#: All the lesion table's columns, in order: the core ones, then extras for QC and review.
TABLE_COLUMNS = CORE_COLUMNS + (
    "lesion_n_voxels",
    "measured_n_voxels",
    "centroid_ijk",
    "central_slice",
    "reference_roi",
    "reference_flag",
    "vote_majority",
    "class_disagreement",
    "qsm_mask_cut_fraction",
    "rule_type",
    "adjudicated",
)
