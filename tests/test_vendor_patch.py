"""scripts/vendor's patches of NiiVue (the "gradient guard", issue 16, "lazy shaders" and "CPU colour
map"): applied
to the served module, and the script fails loudly when NiiVue's source no longer matches a patch.

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
# class Shader's constructor in NiiVue 0.69.0's dist/index.js, as far as the patch matches it.
SHADER_STOCK = (
    "var Shader = class {\n"
    "  constructor(gl, vertexSrc, fragmentSrc) {\n"
    '    __publicField(this, "program");\n'
    '    __publicField(this, "uniforms", {});\n'
    '    __publicField(this, "isMatcap");\n'
    '    __publicField(this, "isCrosscut");\n'
    "    this.program = compileShader(gl, vertexSrc, fragmentSrc);\n"
)
SHADER_REST = (
    "    this.uniforms.u = gl.getUniformLocation(this.program, \"u\");\n"
    "  }\n"
    "  use(gl) {\n"
    "    gl.useProgram(this.program);\n"
    "  }\n"
    "};\n"
)
LAZY = "if (gl.canvas && gl.canvas.qsmreviewLazyShaders) {"
# The four places in refreshLayers() (NiiVue 0.69.0's dist/index.js) that the CPU colour-map patch
# matches, in source order, each as far as the patch matches it.
CPU_STOCK = (
    "  refreshLayers(overlayItem, layer) {\n",
    "    const fb = setupFramebuffer(this.gl);\n    this.gl.viewport(0, 0, this.back.dims[1], this.back.dims[2]);\n",
    "    const { colormapLabelTexture } = setupColormapLabel({\n",
    "    this.gl.deleteFramebuffer(fb);\n    if (layer === 0) {\n",
)
CPU_CALL = "this.qsmreviewCpuColormap === true && this.qsmreviewColormapOnCpu(overlayItem, hdr, img, outTexture)"

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


def test_the_served_niivue_carries_the_lazy_shader_patch_exactly_once() -> None:
    if not SERVED.exists():
        pytest.skip("NiiVue not vendored: scripts/test runs scripts/vendor")
    text = SERVED.read_text()
    assert text.count(LAZY) == 1
    assert text.count("qsmreview patch (scripts/vendor): lazy shaders") == 1
    assert SHADER_STOCK not in text


def test_the_served_niivue_carries_the_cpu_colour_map_patch_exactly_once() -> None:
    if not SERVED.exists():
        pytest.skip("NiiVue not vendored: scripts/test runs scripts/vendor")
    text = SERVED.read_text()
    assert text.count(CPU_CALL) == 1
    assert text.count("  qsmreviewColormapOnCpu(overlayItem, hdr, img, outTexture) {") == 1
    assert text.count("qsmreviewGpuPass: {") == 1
    assert text.count("} /* qsmreview patch: end of qsmreviewGpuPass */") == 1
    assert text.count("var { colormapLabelTexture } = setupColormapLabel({") == 1
    assert CPU_STOCK[2] not in text


def test_the_viewers_ask_for_the_guard_lazy_shaders_and_cpu_colour_map() -> None:
    viewer = (ROOT / "frontend" / "static" / "qsmreview" / "viewer.js").read_text()
    assert "nv.qsmreviewSkipGradient = !options.gradient" in viewer
    assert "canvas.qsmreviewLazyShaders = true" in viewer
    assert "if (options.cpuColormap !== false) nv.qsmreviewCpuColormap = true;" in viewer


def _cpu_body(*, skip: int = -1, double: int = -1) -> str:
    """A stand-in refreshLayers with the four places the CPU colour-map patch matches (one of them
    left out or doubled on request)."""
    parts = []
    for i, stock in enumerate(CPU_STOCK):
        if i != skip:
            parts.append(stock)
        if i == double:
            parts.append(stock)
    return "".join(parts)


VEGA_BUILDS = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js")


def _fake_tree(tmp_path: Path, body: str, version: str = "0.69.0") -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "vendor", tmp_path / "scripts" / "vendor")
    pkg = tmp_path / "frontend" / "node_modules" / "@niivue" / "niivue"
    (pkg / "dist").mkdir(parents=True)
    (pkg / "dist" / "index.js").write_text(body + "//# sourceMappingURL=index.js.map")
    (pkg / "package.json").write_text(json.dumps({"name": "@niivue/niivue", "version": version}))
    for build in VEGA_BUILDS:  # the charting library the script copies after NiiVue
        path = tmp_path / "frontend" / "node_modules" / build
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* {build} */\n//# sourceMappingURL={path.name}.map\n")
    return tmp_path


def _run(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(tree / "scripts" / "vendor")], capture_output=True, text=True, timeout=60)


@needs_node
def test_it_patches_the_gradient_call(tmp_path: Path) -> None:
    body = "refreshLayers() {\n    if (layer === 0) {\n" + STOCK + "        gl: this.gl\n      });\n    }\n}\n"
    tree = _fake_tree(tmp_path, body + SHADER_STOCK + SHADER_REST + _cpu_body() + "export { x };\n")
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


def _shader_module(tmp_path: Path) -> Path:
    """The patched Shader class as a runnable module, with a counting stand-in for compileShader."""
    tree = _fake_tree(
        tmp_path, _cpu_body() + "      this.volumeTexture = outTexture;\n      this.gradientTexture = gradientGL({\n" + SHADER_STOCK + SHADER_REST
    )
    result = _run(tree)
    assert result.returncode == 0, result.stderr
    out = (tree / "frontend" / "static" / "vendor" / "niivue" / "index.js").read_text()
    shader = out[out.index("var Shader = class {") :]
    prelude = (
        "const __publicField = (o, k, v) => { o[k] = v; };\n"
        "let compiled = 0;\n"
        "const compileShader = () => ({ id: ++compiled });\n"
    )
    check = (
        "const gl = (lazy) => ({ canvas: { qsmreviewLazyShaders: lazy }, getUniformLocation: () => 'loc', useProgram: () => {} });\n"
        "const eager = new Shader(gl(false), 'v', 'f');\n"
        "if (compiled !== 1 || eager.program.id !== 1 || eager.uniforms.u !== 'loc') throw new Error('eager');\n"
        "const lazy = new Shader(gl(true), 'v', 'f');\n"
        "if (compiled !== 1) throw new Error('compiled in the constructor');\n"
        "lazy.use(gl(true));\n"
        "if (compiled !== 2 || lazy.program.id !== 2 || lazy.uniforms.u !== 'loc') throw new Error('first use');\n"
        "lazy.use(gl(true));\n"
        "if (compiled !== 2) throw new Error('compiled twice');\n"
        "const lazy2 = new Shader(gl(true), 'v', 'f');\n"
        "if (lazy2.uniforms.u !== 'loc' || compiled !== 3) throw new Error('uniforms first');\n"
    )
    path = tmp_path / "shader_check.mjs"
    path.write_text(prelude + shader + check)
    return path


@needs_node
def test_lazy_shaders_compile_once_on_first_use_and_eagerly_unless_asked(tmp_path: Path) -> None:
    path = _shader_module(tmp_path)
    result = subprocess.run(["node", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@needs_node
@pytest.mark.parametrize("shader", ["", SHADER_STOCK + SHADER_STOCK], ids=["missing", "twice"])
def test_the_lazy_shader_patch_fails_loudly_when_niivue_changed(tmp_path: Path, shader: str) -> None:
    tree = _fake_tree(tmp_path, STOCK + shader)
    result = _run(tree)
    assert result.returncode != 0
    assert "lazy-shader patch expects its source text exactly once" in result.stderr
    assert not (tree / "frontend" / "static" / "vendor" / "niivue" / "index.js").exists()


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


@needs_node
def test_it_wraps_the_colour_map_pass_and_only_that(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path, STOCK + SHADER_STOCK + SHADER_REST + _cpu_body())
    result = _run(tree)
    assert result.returncode == 0, result.stderr
    out = (tree / "frontend" / "static" / "vendor" / "niivue" / "index.js").read_text()
    assert out.count(CPU_CALL) == 1
    # The stock pass sits inside the labelled block that the CPU path breaks out of, in order.
    start = out.index("qsmreviewGpuPass: {")
    assert start < out.index(CPU_STOCK[1]) < out.index("var { colormapLabelTexture }") < out.index("end of qsmreviewGpuPass")
    assert out.index("  qsmreviewColormapOnCpu(") < out.index(CPU_STOCK[0]) < start


@needs_node
@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("how", ["missing", "twice"])
def test_the_cpu_colour_map_patch_fails_loudly_when_niivue_changed(tmp_path: Path, which: int, how: str) -> None:
    body = _cpu_body(skip=which) if how == "missing" else _cpu_body(double=which)
    tree = _fake_tree(tmp_path, STOCK + SHADER_STOCK + SHADER_REST + body)
    result = _run(tree)
    assert result.returncode != 0
    assert "CPU colour-map patch expects its source text exactly once" in result.stderr
    assert not (tree / "frontend" / "static" / "vendor" / "niivue" / "index.js").exists()


@needs_node
def test_it_copies_the_charting_library_without_its_source_map_line(tmp_path: Path) -> None:
    body = "refreshLayers() {\n    if (layer === 0) {\n" + STOCK + "        gl: this.gl\n      });\n    }\n}\n"
    tree = _fake_tree(tmp_path, body + SHADER_STOCK + SHADER_REST + _cpu_body() + "export { x };\n")

    result = _run(tree)

    assert result.returncode == 0, result.stderr
    for build in VEGA_BUILDS:
        served = tree / "frontend" / "static" / "vendor" / "vega" / Path(build).name
        assert served.read_text() == f"/* {build} */\n"


def test_the_served_charting_library_is_the_pinned_one() -> None:
    pinned = json.loads((ROOT / "frontend" / "package.json").read_text())["dependencies"]
    assert (pinned["vega"], pinned["vega-lite"], pinned["vega-embed"]) == ("6.2.0", "6.4.1", "7.1.0")
    served = ROOT / "frontend" / "static" / "vendor" / "vega"
    if not served.exists():
        pytest.skip("scripts/vendor has not run")
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        assert "sourceMappingURL" not in (served / name).read_text()[-200:]
