"""The workspace's pure JavaScript modules (edits, components) under Node's test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_workspace_modules_pass_their_node_tests() -> None:
    result = subprocess.run(
        ["node", "--test", str(ROOT / "tests" / "js")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
