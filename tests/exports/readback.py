"""Reading an exported dataset back and checking it against the BIDS derivatives rules we follow
(docs/export.md): used by every export test, so each checks the same things.

Checked, independently of the writer's code: ``dataset_description.json`` (Name, BIDSVersion,
DatasetType "derivative", GeneratedBy with a Name); every file under ``sub-*`` is named
``sub-<l>_ses-<l>[_label-<l>][_desc-<l>]_<suffix>`` with alphanumeric labels in that entity order,
lies in ``sub-<l>/ses-<l>/anat/`` of its own labels, and (NIfTI) loads with nibabel and has a JSON
sidecar; a ``_Chimap`` sidecar says ``Units: ppm``; a ``_dseg`` has a ``.tsv`` look-up (index,
name) naming every value in the image; TSV headers equal their JSON data dictionary's keys.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

NAME = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)_ses-(?P<ses>[A-Za-z0-9]+)(_label-[A-Za-z0-9]+)?(_desc-[A-Za-z0-9]+)?"
    r"_(?P<suffix>Chimap|dseg|mask)\.(?P<ext>nii\.gz|json|tsv)$"
)


def read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@dataclass
class Dataset:
    root: Path
    description: dict
    images: dict[str, nib.Nifti1Image] = field(default_factory=dict)
    sidecars: dict[str, dict] = field(default_factory=dict)
    lookups: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    lesion_columns: list[str] = field(default_factory=list)
    lesions: list[dict[str, str]] = field(default_factory=list)
    participants: list[dict[str, str]] = field(default_factory=list)

    def image(self, sub: str, ses: str, tail: str) -> nib.Nifti1Image:
        return self.images[f"sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_{tail}.nii.gz"]

    def sidecar(self, sub: str, ses: str, tail: str) -> dict:
        return self.sidecars[f"sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_{tail}.json"]

    def lookup(self, sub: str, ses: str, tail: str) -> list[dict[str, str]]:
        return self.lookups[f"sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_{tail}.tsv"]


def read_back(root: Path) -> Dataset:
    """Read and check the dataset at ``root``; assertion errors say what breaks the rules."""
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["Name"] and description["BIDSVersion"]
    assert description["GeneratedBy"] and description["GeneratedBy"][0]["Name"] == "qsmreview"
    assert (root / "README").is_file()
    dataset = Dataset(root, description)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() or "/" not in rel or rel.endswith("_sessions.tsv"):
            continue
        match = NAME.match(path.name)
        assert match, f"{rel} is not a BIDS derivative name in entity order"
        sub, ses = match["sub"], match["ses"]
        assert rel.startswith(f"sub-{sub}/ses-{ses}/anat/"), f"{rel} is not in its own subject/session folder"
        if match["ext"] == "nii.gz":
            dataset.images[rel] = nib.load(str(path))
            sidecar = path.with_name(path.name[: -len(".nii.gz")] + ".json")
            assert sidecar.is_file(), f"{rel} has no JSON sidecar"
        elif match["ext"] == "json":
            dataset.sidecars[rel] = json.loads(path.read_text())
            if match["suffix"] == "Chimap":
                assert dataset.sidecars[rel]["Units"] == "ppm"
        else:
            assert match["suffix"] == "dseg", f"{rel}: only segmentations have a .tsv"
            columns, rows = read_tsv(path)
            assert columns[:2] == ["index", "name"]
            dataset.lookups[rel] = rows
    for rel, image in dataset.images.items():
        data = np.asanyarray(image.dataobj)
        assert data.ndim == 3
        if rel.endswith("_dseg.nii.gz"):
            rows = dataset.lookups[rel[: -len(".nii.gz")] + ".tsv"]
            named = {int(r["index"]) for r in rows}
            assert set(np.unique(data).astype(int).tolist()) - {0} <= named, f"{rel}: unnamed values"
    dataset.lesion_columns, dataset.lesions = read_tsv(root / "lesions.tsv")
    dictionary = json.loads((root / "lesions.json").read_text())
    assert dataset.lesion_columns == list(dictionary), "lesions.tsv columns differ from lesions.json"
    for column, entry in dictionary.items():
        assert entry["Description"], column
        for row in dataset.lesions:
            if "Levels" in entry and row[column] != "n/a":
                assert row[column] in entry["Levels"], (column, row[column])
    columns, dataset.participants = read_tsv(root / "participants.tsv")
    assert columns[0] == "participant_id"
    assert set(columns[1:]) <= set(json.loads((root / "participants.json").read_text()))
    session_columns = set(json.loads((root / "sessions.json").read_text()))
    for path in root.glob("sub-*/sub-*_sessions.tsv"):
        columns, _ = read_tsv(path)
        assert columns[0] == "session_id" and set(columns[1:]) <= session_columns, path
    assert set((root / ".bidsignore").read_text().split()) == {"lesions.tsv", "lesions.json"}
    subjects = {p.name for p in root.glob("sub-*") if p.is_dir()}
    assert {r["participant_id"] for r in dataset.participants} == subjects
    return dataset
