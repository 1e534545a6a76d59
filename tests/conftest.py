"""Shared fixtures. Each fixture module under tests/fixtures/ serves one concern."""

pytest_plugins = [
    "tests.fixtures.cast",
]
