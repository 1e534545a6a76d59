"""The processing job kinds: thin runners that load series, call the libraries, store outputs.

Each runner reads its inputs through :mod:`qsmreview.processing.inputs`, calls a pure library
(:mod:`recon` for QSM and masks, :mod:`qsmreview.processing.registration` and
:mod:`qsmreview.processing.tissue`), and stores every output with full provenance inside one
transaction at the very end: a job that dies or is cancelled before then leaves no output visible.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import nibabel as nib
import numpy as np
from django.db import transaction

import recon
from recon.geometry import voxel_size_from_affine
from qsmreview.jobs.models import Job
from qsmreview.jobs.runners import register_job_kind
from qsmreview.processing import inputs
from qsmreview.studies.models import Series, SeriesKind, Space
from qsmreview.access import system
from qsmreview.studies.services.series import series_create_derived
from qsmreview.studies.storage import series_local_path

Report = Callable[[float, str], None]


def load(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """A stored series as (float32 array, 4x4 affine)."""
    with series_local_path(series) as path:
        img = nib.load(str(path))
        return np.asarray(img.get_fdata(dtype=np.float32)), np.asarray(img.affine, dtype=np.float64)


def _scaled(report: Report, start: float, stop: float) -> Report:
    """A progress callback for a sub-range [start, stop] of the job's progress."""

    def inner(fraction: float, stage: str) -> None:
        report(start + (stop - start) * min(max(fraction, 0.0), 1.0), stage)

    return inner


def provenance(
    job: Job, sources: Sequence[Series], started: float, **extra: Any
) -> dict[str, Any]:
    """What a derived series records: the job, its parameters, code versions, inputs, runtime."""
    return {
        "job": job.pk,
        "job_kind": job.kind,
        "parameters": job.parameters,
        "library": {"recon": recon.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "inputs": [
            {"series": s.pk, "kind": s.kind, "label": s.label, "version": s.version, "sha256": s.sha256}
            for s in sources
        ],
        "runtime_s": round(time.perf_counter() - started, 3),
        **extra,
    }


def _magnitude_3d(mag: np.ndarray) -> np.ndarray:
    """The first echo of a (possibly multi-echo) magnitude: the best SNR and the least T2* loss."""
    return mag[..., 0] if mag.ndim == 4 else mag


@register_job_kind("qsm", title="QSM reconstruction (MEDI)")
def run_qsm(job: Job, report: Report) -> dict[str, Any]:
    from recon.pipeline import qsm

    started = time.perf_counter()
    session = job.session
    src = inputs.qsm_inputs(session)
    report(0.01, "loading inputs")
    magnitude, affine = load(src.magnitude)
    phase_arrays = [load(p)[0] for p in src.phases]
    phase = phase_arrays[0] if len(phase_arrays) == 1 else np.stack(phase_arrays, axis=-1)
    te = [t for p in src.phases for t in p.echo_times_s]
    mask = None
    if src.brain_mask is not None:
        mask = load(src.brain_mask)[0] > 0.5
    b0 = src.magnitude.b0_t or session.field_strength_t
    p = job.parameters
    result = qsm(
        magnitude,
        phase,
        te if len(te) > 1 else te[0],
        b0,
        voxel_size_from_affine(affine),
        affine=affine,
        mask=mask,
        erosion_mm=p["erosion_mm"],
        background=p["background"],
        solver=p["solver"],
        lam=p["lam"],
        edge_percentage=p["edge_percentage"],
        csf_zero_reference=p["csf_zero_reference"],
        smv=p["smv"],
        progress=_scaled(report, 0.03, 0.97),
    )
    report(0.98, "storing QSM")
    used = [src.magnitude, *src.phases, *([src.brain_mask] if src.brain_mask else [])]
    with transaction.atomic():
        out = series_create_derived(
            by=system(f"job #{job.pk}"),
            session=session,
            kind=SeriesKind.QSM,
            data=result.chi_ppm.astype(np.float32),
            affine=affine,
            job=job,
            derived_from=used,
            b0_t=b0,
            # One 3-D map fitted from every echo: it has no echo time of its own, so the row
            # records none and provenance records the echo times it was fitted from.
            provenance=provenance(
                job,
                used,
                started,
                unit="ppm",
                timings_s={k: round(float(v), 3) for k, v in result.timings.items()},
                b0_t=b0,
                fitted_echo_times_s=te,
            ),
        )
    return {"series": [out.pk], "timings_s": {k: round(float(v), 3) for k, v in result.timings.items()}}


@register_job_kind("brain_mask", title="Brain mask from the T2* magnitude")
def run_brain_mask(job: Job, report: Report) -> dict[str, Any]:
    from recon.mask import brain_mask

    started = time.perf_counter()
    mag_series = inputs.magnitude(job.session)
    report(0.05, "loading magnitude")
    magnitude, affine = load(mag_series)
    report(0.3, "thresholding and morphology")
    mask = brain_mask(_magnitude_3d(magnitude), voxel_size_from_affine(affine))
    report(0.9, "storing mask")
    with transaction.atomic():
        out = series_create_derived(
            by=system(f"job #{job.pk}"),
            session=job.session,
            kind=SeriesKind.BRAIN_MASK,
            data=mask.astype(np.uint8),
            affine=affine,
            job=job,
            derived_from=[mag_series],
            provenance=provenance(job, [mag_series], started, method="recon.mask.brain_mask"),
        )
    return {"series": [out.pk], "voxels": int(mask.sum())}


@register_job_kind("coregister", title="Rigid coregistration to the T2* magnitude")
def run_coregister(job: Job, report: Report) -> dict[str, Any]:
    from qsmreview.processing.registration import rigid_register

    started = time.perf_counter()
    session = job.session
    mag_series = inputs.magnitude(session)
    sources = inputs.coregistration_sources(session)
    report(0.02, "loading T2* magnitude")
    fixed, fixed_affine = load(mag_series)
    fixed = _magnitude_3d(fixed)
    mask_series = inputs.brain_mask_or_none(session)
    fixed_mask = load(mask_series)[0] > 0.5 if mask_series is not None else None
    results = []
    for i, src in enumerate(sources):
        share = 0.95 / len(sources)
        step = _scaled(report, 0.03 + i * share, 0.03 + (i + 1) * share)
        step(0.0, f"registering {src.get_kind_display()}")
        moving, moving_affine = load(src)
        reg = rigid_register(
            fixed, fixed_affine, moving, moving_affine, fixed_mask=fixed_mask, progress=step
        )
        results.append((src, reg))
    report(0.98, "storing coregistered series")
    out_ids = []
    with transaction.atomic():
        for src, reg in results:
            out = series_create_derived(
                by=system(f"job #{job.pk}"),
                session=session,
                kind=src.kind,
                label=src.label,
                space=Space.T2STAR,
                data=reg.resampled.astype(np.float32),
                affine=fixed_affine,
                job=job,
                derived_from=[src, mag_series, *([mask_series] if mask_series else [])],
                provenance=provenance(
                    job,
                    [src, mag_series, *([mask_series] if mask_series else [])],
                    started,
                    method="SimpleITK rigid (Euler3D), Mattes mutual information",
                    rotation_deg=[round(float(a), 4) for a in reg.rotation_deg],
                    translation_mm=[round(float(t), 4) for t in reg.translation_mm],
                    fixed_to_moving_ras_mm=np.asarray(reg.fixed_to_moving, dtype=float).round(6).tolist(),
                    metric=float(reg.metric),
                ),
            )
            out_ids.append(out.pk)
    return {"series": out_ids}


@register_job_kind("tissue", title="Tissue classification (CSF/GM/WM)")
def run_tissue(job: Job, report: Report) -> dict[str, Any]:
    started = time.perf_counter()
    session = job.session
    params = job.parameters
    source = inputs.tissue_source(session, params["source"])
    report(0.05, "loading inputs")
    data, affine = load(source)
    used = [source]
    if params["source"] == "labels":
        from qsmreview.processing.labelmaps import labels_to_fast

        report(0.3, f"mapping {params['scheme']} labels to CSF/GM/WM")
        labels, mapping_report = labels_to_fast(data, scheme=params["scheme"])
        method = {"method": "label map", "scheme": params["scheme"], "report": mapping_report.as_dict()}
    else:
        from recon.mask import brain_mask

        from qsmreview.processing.tissue import classify_tissue

        mask_series = inputs.brain_mask_or_none(session)
        if mask_series is not None:
            mask = load(mask_series)[0] > 0.5
            used.append(mask_series)
        else:
            mag_series = inputs.magnitude(session)
            magnitude, _ = load(mag_series)
            mask = brain_mask(_magnitude_3d(magnitude), voxel_size_from_affine(affine))
            used.append(mag_series)
        report(0.2, "HMRF tissue classification")
        contrast = "wm_nulled" if params["source"] == "t1_wmn" else "csf_nulled"
        labels = classify_tissue(
            data, mask, voxel_size_from_affine(affine), contrast=contrast, beta=float(params["beta"])
        )
        method = {"method": "dipy TissueClassifierHMRF", "contrast": contrast}
    report(0.95, "storing tissue labels")
    with transaction.atomic():
        out = series_create_derived(
            by=system(f"job #{job.pk}"),
            session=session,
            kind=SeriesKind.TISSUE,
            data=np.asarray(labels, dtype=np.uint8),
            affine=affine,
            job=job,
            derived_from=used,
            provenance=provenance(job, used, started, labels="FSL FAST: 0 bg, 1 CSF, 2 GM, 3 WM", **method),
        )
    counts = np.bincount(np.asarray(labels, dtype=np.uint8).ravel(), minlength=4)
    return {"series": [out.pk], "voxels": {"csf": int(counts[1]), "gm": int(counts[2]), "wm": int(counts[3])}}
