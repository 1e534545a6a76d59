"""Physical constants used across :mod:`recon`."""

#: Proton gyromagnetic ratio over 2*pi, in Hz/T (CODATA 2018: 42.577478518 MHz/T).
GAMMA_HZ_PER_T: float = 42.577478e6
