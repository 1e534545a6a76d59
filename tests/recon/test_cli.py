"""The command line: phantom -> qsm round trip, and exit code 2 with a message on bad input."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from recon.cli import main
from recon.io import load_nifti, save_nifti

TE = ["0.005", "0.012", "0.019"]


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    rc = main(["phantom", "--shape", "64", "64", "32", "--voxel", "1.8", "1.9", "3.0", "--out", str(out),
               "--echoes", *TE, "--seed", "2", "--quiet"])
    assert rc == 0
    return out


def qsm_args(d: Path, out: Path, **over: list[str]) -> list[str]:
    args = {
        "--magnitude": [str(d / f"magnitude_e{k}.nii.gz") for k in (1, 2, 3)],
        "--phase": [str(d / f"phase_e{k}.nii.gz") for k in (1, 2, 3)],
        "--te": TE,
        "--b0": ["7"],
        "--out": [str(out)],
    }
    args.update(over)
    flat = ["qsm", "--quiet"]
    for k, v in args.items():
        flat += [k, *v]
    return flat


def test_it_reconstructs_the_phantom_on_the_input_grid(phantom_dir, tmp_path):
    out = tmp_path / "chi.nii.gz"
    assert main(qsm_args(phantom_dir, out)) == 0
    img = nib.load(str(out))
    ref = nib.load(str(phantom_dir / "magnitude_e1.nii.gz"))
    assert img.shape == ref.shape and img.get_data_dtype() == np.float32
    np.testing.assert_allclose(img.affine, ref.affine)
    chi = np.asarray(img.dataobj)
    truth, _ = load_nifti(phantom_dir / "chi_ppm.nii.gz")
    tissue, _ = load_nifti(phantom_dir / "tissue.nii.gz")
    m = chi != 0
    # Grey matter (cortex + nuclei) is more paramagnetic than white matter, as in the truth.
    gm_wm = chi[m & (tissue == 2)].mean() - chi[m & (tissue == 3)].mean()
    true = truth[m & (tissue == 2)].mean() - truth[m & (tissue == 3)].mean()
    assert gm_wm > 0.2 * true > 0


def test_it_accepts_a_4d_file_and_a_mask(phantom_dir, tmp_path):
    out = tmp_path / "chi.nii.gz"
    rc = main(qsm_args(phantom_dir, out, **{"--magnitude": [str(phantom_dir / "magnitude.nii.gz")],
                                            "--phase": [str(phantom_dir / "phase.nii.gz")],
                                            "--mask": [str(phantom_dir / "brain_mask.nii.gz")]}))
    assert rc == 0 and out.exists()


def bad(phantom_dir: Path, tmp_path: Path, capsys, message: str, **over: list[str]) -> None:
    rc = main(qsm_args(phantom_dir, tmp_path / "chi.nii.gz", **over))
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err, err
    assert not (tmp_path / "chi.nii.gz").exists()


def test_it_rejects_a_te_count_mismatch(phantom_dir, tmp_path, capsys):
    bad(phantom_dir, tmp_path, capsys, "echo time", **{"--te": TE[:2]})


def test_it_rejects_a_mismatched_grid(phantom_dir, tmp_path, capsys):
    data, affine = load_nifti(phantom_dir / "phase_e2.nii.gz")
    save_nifti(data[:-1], affine, tmp_path / "small.nii.gz")
    bad(phantom_dir, tmp_path, capsys, "grid",
        **{"--phase": [str(phantom_dir / "phase_e1.nii.gz"), str(tmp_path / "small.nii.gz"), str(phantom_dir / "phase_e3.nii.gz")]})


def test_it_rejects_a_mismatched_affine(phantom_dir, tmp_path, capsys):
    data, affine = load_nifti(phantom_dir / "phase_e1.nii.gz")
    shifted = affine.copy()
    shifted[0, 3] += 5.0
    save_nifti(data, shifted, tmp_path / "moved.nii.gz")
    bad(phantom_dir, tmp_path, capsys, "affine",
        **{"--phase": [str(tmp_path / "moved.nii.gz"), str(phantom_dir / "phase_e2.nii.gz"), str(phantom_dir / "phase_e3.nii.gz")]})


def test_it_rejects_nan(phantom_dir, tmp_path, capsys):
    data, affine = load_nifti(phantom_dir / "magnitude_e1.nii.gz")
    data = data.astype(np.float32)
    data[30, 30, 16] = np.nan
    save_nifti(data, affine, tmp_path / "nan.nii.gz")
    bad(phantom_dir, tmp_path, capsys, "NaN",
        **{"--magnitude": [str(tmp_path / "nan.nii.gz"), *[str(phantom_dir / f"magnitude_e{k}.nii.gz") for k in (2, 3)]]})


def test_it_rejects_phase_out_of_range(phantom_dir, tmp_path, capsys):
    data, affine = load_nifti(phantom_dir / "phase_e1.nii.gz")
    save_nifti(data * 10.0, affine, tmp_path / "deg.nii.gz")
    bad(phantom_dir, tmp_path, capsys, "phase values span",
        **{"--phase": [str(tmp_path / "deg.nii.gz"), *[str(phantom_dir / f"phase_e{k}.nii.gz") for k in (2, 3)]]})


def test_it_rejects_an_empty_mask(phantom_dir, tmp_path, capsys):
    data, affine = load_nifti(phantom_dir / "brain_mask.nii.gz")
    save_nifti(np.zeros_like(data), affine, tmp_path / "empty.nii.gz", dtype=np.uint8)
    bad(phantom_dir, tmp_path, capsys, "empty", **{"--mask": [str(tmp_path / "empty.nii.gz")]})


def test_it_rejects_an_unreadable_file(phantom_dir, tmp_path, capsys):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not a nifti")
    bad(phantom_dir, tmp_path, capsys, "cannot read",
        **{"--magnitude": [str(junk), *[str(phantom_dir / f"magnitude_e{k}.nii.gz") for k in (2, 3)]]})


def test_its_step_commands_chain(phantom_dir, tmp_path):
    d = phantom_dir
    mags = [str(d / f"magnitude_e{k}.nii.gz") for k in (1, 2, 3)]
    phases = [str(d / f"phase_e{k}.nii.gz") for k in (1, 2, 3)]
    assert main(["mask", "--magnitude", mags[0], "--out", str(tmp_path / "m.nii.gz"), "--quiet"]) == 0
    assert main(["unwrap", "--phase", phases[0], "--mask", str(tmp_path / "m.nii.gz"), "--out", str(tmp_path / "u.nii.gz")]) == 0
    assert main(["fit", "--magnitude", *mags, "--phase", *phases, "--te", *TE, "--mask", str(tmp_path / "m.nii.gz"),
                 "--out", str(tmp_path / "f.nii.gz"), "--quiet"]) == 0
    assert main(["bgremove", "--field", str(tmp_path / "f.nii.gz"), "--mask", str(tmp_path / "m.nii.gz"),
                 "--erosion-mm", "2.5", "--out", str(tmp_path / "l.nii.gz"), "--out-mask", str(tmp_path / "e.nii.gz"), "--quiet"]) == 0
    assert main(["invert", "--field", str(tmp_path / "l.nii.gz"), "--mask", str(tmp_path / "e.nii.gz"), "--magnitude", mags[0],
                 "--te-ref", "0.007", "--b0", "7", "--out", str(tmp_path / "chi.nii.gz"), "--quiet"]) == 0
    chi, _ = load_nifti(tmp_path / "chi.nii.gz")
    assert np.isfinite(chi).all() and np.abs(chi).max() > 0.01
