"""A small hand-built session shared by the pipeline and CLI tests (values worked by hand there)."""

from __future__ import annotations

import numpy as np

CSF, GM, WM = 1, 2, 3
SHAPE = (30, 30, 5)
ISO = (1.0, 1.0, 1.0)


def session() -> dict:
    """White matter with a cortical band at y >= 20; lesion 1 (WM) a 3x3 square on slice 2 at
    x, y 5..7, three rows of QSM 0.04 / 0.05 / 0.06; lesion 2 (mixed) at x 20..23, y 18..21 on
    slice 2, its WM half (y 18, 19) at 0.03 and its GM half (y 20, 21) at -0.01; WM 0.01 and
    GM 0.02 elsewhere. Raters A and B draw both, C only lesion 1."""
    tissue = np.full(SHAPE, WM, np.uint8)
    tissue[:, 20:, :] = GM
    qsm = np.where(tissue == GM, 0.02, 0.01).astype(np.float32)
    first = np.zeros(SHAPE, np.uint8)
    first[5:8, 5:8, 2] = 1
    qsm[5:8, 5:8, 2] = np.array([0.04, 0.05, 0.06], np.float32)[:, None]
    second = np.zeros(SHAPE, np.uint8)
    second[20:24, 18:22, 2] = 1
    qsm[20:24, 18:20, 2] = 0.03
    qsm[20:24, 20:22, 2] = -0.01
    masks = {"A": first | second, "B": first | second, "C": first.copy()}
    return {"masks": masks, "tissue": tissue, "voxel_size": ISO, "qsm": qsm}
