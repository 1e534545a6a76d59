"""scripts/vendor's patch of NiiVue (the "gradient guard", issue 16): applied to the served module,
and the script fails loudly when NiiVue's source no longer matches the patch.

The fake-package tests copy the script into a temporary tree (it finds the package relative to
its own location) with a small stand-in for NiiVue's dist/index.js.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVED = ROOT / "frontend" / "static" / "vendor" / "niivue" / "index.js"
GUARD = "if (!this.qsmreviewSkipGradient) this.gradientTexture = gradientGL({"
STOCK = "      this.volumeTexture = outTexture;\n      this.gradientTexture = gradientGL({\n"

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is needed by scripts/vendor")


def test_the_served_niivue_carries_the_gradient_guard_exactly_once() -> None:
    if not SERVED.exists():
        pytest.skip("NiiVue not vendored: scripts/test runs scripts/vendor")
    text = SERVED.read_text()
    assert text.count(GUARD) == 1
    assert text.count("qsmreview patch (scripts/vendor): gradient guard") == 1
    # Two calls in all: refreshLayers' (guarded) and the public nv.gradientGL()'s (left as is).
    assert text.count("this.gradientTexture = gradientGL({") == 2
    assert "sourceMappingURL=" not in text


def test_the_viewers_ask_for_the_guard() -> None:
    viewer = (ROOT / "frontend" / "static" / "qsmreview" / "viewer.js").read_text()
    assert "nv.qsmreviewSkipGradient = !options.gradient" in viewer


def _fake_tree(tmp_path: Path, body: str, version: str = "0.69.0") -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "vendor", tmp_path / "scripts" / "vendor")
    pkg = tmp_path / "frontend" / "node_modules" / "@niivue" / "niivue"
    (pkg / "dist").mkdir(parents=True)
    (pkg / "dist" / "index.js").write_text(body + "//# sourceMappingURL=index.js.map")
    (pkg / "package.json").write_text(json.dumps({"name": "@niivue/niivue", "version": version}))
    return tmp_path


def _run(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(tree / "scripts" / "vendor")], capture_output=True, text=True, timeout=60)


@needs_node
def test_it_patches_the_gradient_call(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path, "refreshLayers() {\n    if (layer === 0) {\n" + STOCK + "        gl: this.gl\n      });\n    }\n}\nexport { x };\n")
    result = _run(tree)
    assert result.returncode == 0, result.stderr
    out = (tree / "frontend" / "static" / "vendor" / "niivue" / "index.js").read_text()
    assert out.count(GUARD) == 1
    assert "sourceMappingURL" not in out
    # Only that statement changed: remove the patch and the stock text is back.
    unpatched = out.replace("      /* qsmreview patch (scripts/vendor): gradient guard */\n", "").replace(
        "if (!this.qsmreviewSkipGradient) ", ""
    )
    assert STOCK in unpatched


@needs_node
@pytest.mark.parametrize("body", ["no gradient call here\n", STOCK + STOCK], ids=["missing", "twice"])
def test_it_fails_loudly_when_niivue_changed(tmp_path: Path, body: str) -> None:
    tree = _fake_tree(tmp_path, body)
    result = _run(tree)
    assert result.returncode != 0
    assert "gradient patch expects its source text exactly once" in result.stderr
    assert not (tree / "frontend" / "static" / "vendor" / "niivue" / "index.js").exists()


@needs_node
def test_it_refuses_another_niivue_version(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path, STOCK, version="0.70.0")
    result = _run(tree)
    assert result.returncode != 0
    assert "NiiVue 0.70.0 installed" in result.stderr
