"""A snapshot's tests as CSV rows: one per group (with its one-sample t test) and per comparison,
with the Bonferroni correction (the reference study's Table 3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

STATISTICS_COLUMNS = (
    "test", "label", "level", "method", "n", "n_patients", "mean_ppm", "sd_ppm", "ci_low_ppm", "ci_high_ppm",
    "estimate_ppm", "statistic", "df", "p", "in_family", "p_bonferroni", "significant", "alpha",
    "bonferroni_m", "bonferroni_threshold",
)


def statistics_rows(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    correction = result.get("correction") or {}
    common = {"alpha": correction.get("alpha"), "bonferroni_m": correction.get("m"),
              "bonferroni_threshold": correction.get("threshold")}
    for g in result.get("groups", []):
        t = g["test"]
        yield {
            "test": t["name"], "label": g["label"], "level": g["level"], "method": t["method"], "n": g["n"],
            "n_patients": g["n_patients"], "mean_ppm": g["mean_ppm"], "sd_ppm": g["sd_ppm"],
            "ci_low_ppm": g["ci_low_ppm"], "ci_high_ppm": g["ci_high_ppm"], "estimate_ppm": t["estimate_ppm"],
            "statistic": t["statistic"], "df": t["df"], "p": t["p"], "in_family": t["in_family"],
            "p_bonferroni": t["p_corrected"], "significant": t["significant"], **common,
        }
    for t in result.get("comparisons", []):
        yield {
            "test": t["name"], "label": t["name"].replace("_", " "), "level": "lesion", "method": t["method"],
            "n": "/".join(map(str, t["n"])), "n_patients": None, "mean_ppm": None, "sd_ppm": None,
            "ci_low_ppm": t["ci_low_ppm"], "ci_high_ppm": t["ci_high_ppm"], "estimate_ppm": t["estimate_ppm"],
            "statistic": t["statistic"], "df": t["df"], "p": t["p"], "in_family": t["in_family"],
            "p_bonferroni": t["p_corrected"], "significant": t["significant"], **common,
        }
