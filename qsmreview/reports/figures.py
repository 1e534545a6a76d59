"""The data behind the dashboard's figures (plain lists of dicts, embedded as JSON): Fig 2A (every
lesion's relative susceptibility by type, the two portions of a mixed lesion joined), Fig 2B
(patient means by type) and the agreement figure. The charts themselves are Vega-Lite specs
(``frontend/static/qsmreview/reports/dashboard.js``) drawn by the pinned vega-embed."""

from __future__ import annotations

import hashlib
from typing import Any

#: Lesion kinds in figure order: (key, label, x position).
KINDS = (
    ("wm", "WM lesions", 0),
    ("cortical", "Cortical lesions", 1),
    ("mixed_wm", "Mixed: WM portion", 2),
    ("mixed_cortical", "Mixed: cortical portion", 3),
)
_X = {k: x for k, _, x in KINDS}
_LABEL = {k: label for k, label, _ in KINDS}


def _kind(row: dict[str, Any]) -> str | None:
    if row["lesion_type"] == "mixed":
        return f"mixed_{row['portion']}"
    return row["lesion_type"] if row["lesion_type"] in ("wm", "cortical") else None


def _jitter(*parts: Any) -> float:
    """A fixed horizontal offset in [-0.3, 0.3] from the point's identity (same on every draw)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return (int.from_bytes(digest[:4], "big") / 2**32 - 0.5) * 0.6


def lesion_points(rows: list[dict[str, Any]], *, link: bool) -> list[dict[str, Any]]:
    """Fig 2A: one point per measured lesion or portion; both portions of a mixed lesion share
    ``pair`` and their jitter so a line joins them. ``url`` opens the lesion in the session's QC
    viewer (selected; a rater's own lesion: the crosshair on its centre, or without one the
    consensus candidate holding it on the session's consensus page); None without a session or
    when the viewer may not follow links."""
    points = []
    for r in rows:
        kind = _kind(r)
        value = r["relative_susceptibility_ppm"]
        if kind is None or value is None:
            continue
        pair = f"{r['subject']}/{r['lesion']}"
        url = None
        if link and r.get("session"):
            viewer = f"/sessions/{r['session']}/consensus/qc/viewer/"
            if r.get("consensus_lesion") is not None:
                url = f"{viewer}#lesion-{r['consensus_lesion']}"
            elif r.get("centroid_mm"):  # a rater's own lesion: the viewer's crosshair on its centre
                url = f"{viewer}#mm={','.join(f'{float(v):.3f}' for v in r['centroid_mm'])}"
            else:
                url = f"/sessions/{r['session']}/consensus/#candidate-{r.get('candidate') or ''}"
        points.append({
            "subject": r["subject"],
            "lesion": r["lesion"],
            "kind": _LABEL[kind],
            "x": _X[kind] + _jitter(pair, "mixed" if kind.startswith("mixed") else kind),
            "value_ppm": value,
            "pair": pair if kind.startswith("mixed") else None,
            "source": r["source"],
            "excluded": r["excluded"],
            "url": url,
        })
    return points


def patient_points(patients: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fig 2B: one point per patient and lesion kind with a value (the mean of their lesions)."""
    points = []
    for p in patients:
        for kind, label, x in KINDS:
            value = p[f"mean_{kind}_ppm"]
            if value is not None:
                points.append({"subject": p["subject"], "kind": label, "x": x + _jitter(p["subject"], kind) * 0.5,
                               "value_ppm": value})
    return points


def agreement_points(pooled: dict[str, Any]) -> list[dict[str, Any]]:
    """The agreement figure: F1 and mean Dice per rater pair and per rater against the consensus."""
    points = []
    for group, pairs in (("rater pair", pooled.get("pairs", [])), ("rater vs consensus", pooled.get("vs_consensus", []))):
        for p in pairs:
            for measure, value in (("F1", p.f1), ("mean Dice", p.mean_dice)):
                if value is not None:
                    points.append({"pair": f"{p.reference} / {p.tested}", "group": group, "measure": measure,
                                   "value": value, "sessions": p.sessions})
    return points
