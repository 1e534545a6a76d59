"""Shared fixtures. Each fixture module under tests/fixtures/ serves one concern."""

pytest_plugins = [
    "tests.fixtures.cast",
    "tests.fixtures.phantom",
    "tests.fixtures.ci",
    "tests.fixtures.nifti",
    "tests.fixtures.worker",
    "tests.fixtures.browser",
    "tests.fixtures.cache",
    "tests.fixtures.uploads",
]

