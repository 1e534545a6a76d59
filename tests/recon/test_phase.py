"""Phase unit recognition: radians, scanner 12-bit integers, and garbage."""

from __future__ import annotations

import numpy as np
import pytest

from recon.errors import ReconInputError
from recon.phase import phase_to_radians


def test_it_keeps_radians():
    x = np.linspace(-np.pi, np.pi, 101, dtype=np.float32).reshape(101, 1, 1)
    out, how = phase_to_radians(x)
    assert how == "radians"
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_it_scales_signed_12_bit_phase():
    x = np.array([-4096, -2048, 0, 2048, 4095], dtype=np.int16)
    out, _ = phase_to_radians(x)
    np.testing.assert_allclose(out[:4], [-np.pi, -np.pi / 2, 0.0, np.pi / 2], atol=1e-6)
    assert out[4] == pytest.approx(np.pi * 4095 / 4096, abs=1e-6)


def test_it_scales_unsigned_12_bit_phase():
    x = np.array([0, 1024, 2048, 4095], dtype=np.uint16)
    out, _ = phase_to_radians(x)
    np.testing.assert_allclose(out[:3], [-np.pi, -np.pi / 2, 0.0], atol=1e-6)


@pytest.mark.parametrize(
    "garbage",
    [np.array([0.0, 10.5]), np.array([0.0, 9000.0]), np.array([np.nan, 0.0]), np.array([0, 1 + 1j])],
    ids=["fractional-out-of-range", "too-large-integers", "nan", "complex"],
)
def test_it_rejects_phase_out_of_range(garbage):
    with pytest.raises(ReconInputError):
        phase_to_radians(garbage)
