"""How accurate is the whole QSM pipeline on the phantom, across seeds, noise levels and options?

Run from the project root::

    .venv/bin/python benchmarks/pipeline_accuracy.py                      # seeds 0-4, SNR 15/50/300 (~1 min)
    .venv/bin/python benchmarks/pipeline_accuracy.py --sources            # + where the error comes from
    .venv/bin/python benchmarks/pipeline_accuracy.py --setups default toolbox --plot lesions.png

For every seed and SNR the synthetic 7T phantom (:func:`recon.phantom.make_phantom`, single echo)
goes through :func:`recon.pipeline.qsm` once per setup:

- ``default``: PDF and the ADMM solver, as the pipeline runs by default;
- ``toolbox``: the toolbox's Gauss-Newton/CG solver instead (slower);
- ``vsharp``: V-SHARP instead of PDF;
- ``smv``: MEDI's spherical mean value option (5 mm; the mask shrinks by that radius);
- ``medi0``: MEDI+0, the CSF zero reference.

Each map is scored against the true susceptibility in the eroded mask the pipeline used:

- NRMSE (means removed; an all-zero map scores 1);
- cortex minus WM and deep grey nuclei minus WM, as a fraction of the true contrast (1 = right
  scale);
- per lesion, relative susceptibility against its same-tissue reference ring
  (:func:`recon.metrics.lesion_agreement`): the share of lesions with |true contrast| >= 0.01 ppm
  that get the right sign, the correlation and slope against the truth, the largest error and
  its lesion. ``ok`` marks the issue's criteria (sign >= 90 %, correlation >= 0.9).

``--sources`` adds two rows per seed that split the error between the steps. ``MEDI, true local``
inverts the field of the true in-mask susceptibility plus the phase noise of that SNR
(:func:`recon.phantom.local_field`), so no background removal is involved. ``PDF(true total)``
runs PDF on the noiseless total field and inverts the result, so unwrapping and noise are left
out. ``--plot`` draws estimated against true lesion contrast (WM and cortical portions apart),
one panel per setup. Figures only: nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.grid import matrix_size  # noqa: E402
from recon.bgremove import pdf  # noqa: E402
from recon.constants import GAMMA_HZ_PER_T  # noqa: E402
from recon.inversion import medi  # noqa: E402
from recon.metrics import lesion_agreement, nrmse, relative_susceptibility  # noqa: E402
from recon.phantom import Phantom, local_field, make_phantom  # noqa: E402
from recon.pipeline import qsm  # noqa: E402

SETUPS: dict[str, dict[str, Any]] = {
    "default": {},
    "toolbox": {"solver": "toolbox"},
    "vsharp": {"background": "vsharp"},
    "smv": {"smv": True},
    "medi0": {"csf_zero_reference": True},
}
NUCLEI = {2: "caudate", 3: "putamen", 4: "globus pallidus"}


def _contrast_ratio(est: np.ndarray, truth: np.ndarray, region: np.ndarray, wm: np.ndarray) -> float:
    """(region - WM) in the estimate as a fraction of the same in the truth."""
    true_c = truth[region].mean() - truth[wm].mean()
    return float((est[region].mean() - est[wm].mean()) / true_c)


def score(ph: Phantom, chi: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Accuracy figures of one map (ppm) against the phantom's truth in ``mask``."""
    truth = ph.chi_ppm
    wm = (ph.tissue == 3) & (ph.lesions == 0) & mask
    cortex = (ph.tissue == 2) & (ph.deep_grey == 0) & (ph.lesions == 0) & mask
    nuclei = [_contrast_ratio(chi, truth, (ph.deep_grey == k) & mask, wm) for k in NUCLEI if ((ph.deep_grey == k) & mask).any()]
    agree = lesion_agreement(chi, truth, ph.lesions, ph.tissue, mask=mask)
    return {
        "nrmse": nrmse(chi, truth, mask, demean=True),
        "cortex": _contrast_ratio(chi, truth, cortex, wm),
        "nuclei": (min(nuclei), max(nuclei)),
        "lesions": agree,
        "portions": (
            relative_susceptibility(truth, ph.lesions, ph.tissue, mask=mask, portions=True),
            relative_susceptibility(chi, ph.lesions, ph.tissue, mask=mask, portions=True),
        ),
    }


def _line(seed: int, snr: float, name: str, s: dict[str, Any], seconds: float) -> str:
    a = s["lesions"]
    worst = f"#{a.worst}" if a.worst is not None else "-"
    return (
        f"{seed:>4} {snr:>5g} {name:<18} {s['nrmse']:6.3f} {s['cortex']:7.2f} {s['nuclei'][0]:5.2f}-{s['nuclei'][1]:<5.2f}"
        f" {a.n_strong:>3} {a.sign_fraction:5.2f} {a.correlation:6.3f} {a.slope:6.2f} {a.max_error:8.4f} {worst:>5}"
        f" {'ok' if a.meets() else 'FAIL':>4} {seconds:6.1f}"
    )


def run(seed: int, snr: float, setups: list[str], shape: tuple[int, int, int], voxel: tuple[float, float, float], sources: bool) -> list[dict[str, Any]]:
    ph = make_phantom(shape, voxel, te=(0.0177,), snr=snr, seed=seed)
    rows: list[dict[str, Any]] = []
    for name in setups:
        t0 = time.perf_counter()
        r = qsm(ph.magnitude, ph.phase, ph.te, ph.b0, ph.voxel_size, affine=ph.affine, **SETUPS[name])
        seconds = time.perf_counter() - t0
        rows.append({"seed": seed, "snr": snr, "setup": name, "seconds": seconds, **score(ph, r.chi_ppm, r.eroded_mask)})
        print(_line(seed, snr, name, rows[-1], seconds), flush=True)
        if name == "default" and sources:
            rows += _sources(ph, r, seed, snr)
    return rows


def _sources(ph: Phantom, r: Any, seed: int, snr: float) -> list[dict[str, Any]]:
    """Invert fields with part of the pipeline's error left out (see the module docstring)."""
    mask = r.eroded_mask
    to_rad = 2 * np.pi * GAMMA_HZ_PER_T * ph.b0 * ph.te[0] * 1e-6
    kw = {"magnitude": ph.magnitude, "noise": np.where(mask, r.noise, 1.0).astype(np.float32), "b0_dir": ph.b0_dir}
    fields = {
        "MEDI, true local": lambda: local_field(ph, mask, snr=snr, seed=seed),
        "PDF(true total)": lambda: pdf(ph.field_ppm * np.float32(to_rad), mask, ph.voxel_size, b0_dir=ph.b0_dir, noise=kw["noise"]),
    }
    rows = []
    for name, make in fields.items():
        t0 = time.perf_counter()
        res = medi(make(), mask, ph.voxel_size, **kw)
        chi = np.where(mask, res.chi / np.float32(to_rad), 0.0).astype(np.float32)
        seconds = time.perf_counter() - t0
        rows.append({"seed": seed, "snr": snr, "setup": name, "seconds": seconds, **score(ph, chi, mask)})
        print(_line(seed, snr, name, rows[-1], seconds), flush=True)
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Estimated against true lesion contrast, one panel per setup, all seeds and SNRs pooled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["setup"] for r in rows))
    cols = min(3, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.8 * cols, 3.8 * nrows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        sel = [r for r in rows if r["setup"] == name]
        for portion, colour in (("wm", "tab:blue"), ("gm", "tab:red")):
            pts = [
                (truth[k][portion], est[k][portion])
                for r in sel
                for truth, est in [r["portions"]]
                for k in truth
                if portion in truth[k] and portion in est.get(k, {})
            ]
            if pts:
                t, e = np.array(pts).T
                ax.scatter(t, e, s=12, alpha=0.6, color=colour, label=f"{portion.upper()} portion")
        lim = 0.06
        ax.plot([-lim, lim], [-lim, lim], color="0.4", lw=0.8)
        ax.axhline(0, color="0.85", lw=0.6)
        ax.axvline(0, color="0.85", lw=0.6)
        fails = sum(not r["lesions"].meets() for r in sel)
        ax.set_title(f"{name}\n{fails} of {len(sel)} maps fail the criteria", fontsize=9)
        ax.set_xlabel("true relative susceptibility (ppm)", fontsize=8)
        ax.set_ylabel("estimated (ppm)", fontsize=8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xticks([-0.04, 0, 0.04])
        ax.set_yticks([-0.04, 0, 0.04])
        ax.set_aspect("equal")
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--snr", type=float, nargs="+", default=[15.0, 50.0, 300.0])
    ap.add_argument("--setups", nargs="+", default=["default", "vsharp", "smv", "medi0"], choices=list(SETUPS))
    ap.add_argument("--size", type=matrix_size, default="96x96x48", help="phantom matrix (default: the tests' 96x96x48)")
    ap.add_argument("--voxel", type=float, nargs=3, default=(1.2, 1.3, 2.0), help="voxel size in mm")
    ap.add_argument("--sources", action="store_true", help="add rows that leave out background removal or noise")
    ap.add_argument("--plot", type=Path, help="write a PNG of estimated against true lesion contrast")
    args = ap.parse_args(argv)
    shape = args.size
    print(f"phantom {'x'.join(map(str, shape))} at {tuple(args.voxel)} mm, TE 17.7 ms, 7 T; seeds {args.seeds}, SNR {args.snr}")
    print("cortex / nuclei: (region - WM) as a fraction of the truth; lesions: n with |truth| >= 0.01 ppm,")
    print("share with the right sign, correlation and slope against the truth, largest error (ppm) and its lesion.")
    print(
        f"{'seed':>4} {'SNR':>5} {'setup':<18} {'NRMSE':>6} {'cortex':>7} {'nuclei':>11} {'n':>3} {'sign':>5} "
        f"{'corr':>6} {'slope':>6} {'max err':>8} {'worst':>5} {'':>4} {'s':>6}"
    )
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        for snr in args.snr:
            rows += run(seed, snr, args.setups, shape, tuple(args.voxel), args.sources)  # type: ignore[arg-type]
    print("\nper setup over all seeds and SNRs (NRMSE range, cortex ratio range, worst correlation, maps meeting the criteria):")
    for name in dict.fromkeys(r["setup"] for r in rows):
        sel = [r for r in rows if r["setup"] == name]
        n = [r["nrmse"] for r in sel]
        c = [r["cortex"] for r in sel]
        ok = sum(r["lesions"].meets() for r in sel)
        print(
            f"  {name:<18} NRMSE {min(n):.2f}-{max(n):.2f}  cortex {min(c):.2f}-{max(c):.2f}  "
            f"corr >= {min(r['lesions'].correlation for r in sel):.3f}  {ok}/{len(sel)} ok"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
