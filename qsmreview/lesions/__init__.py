"""Lesion numerics (no Django): the raters' masks to consensus lesions, classes, reference ROIs,
measurements and agreement. Entry point :func:`qsmreview.lesions.pipeline.analyse_session`;
rules and defaults in docs/consensus.md."""
