"""The CPU colour-map patch (scripts/vendor) against NiiVue's own GPU pass, in Chromium.

The same uint8 volume -- stored with flipped and permuted axes and an oblique affine, so NiiVue
reorders it to RAS, and with scl_slope/scl_inter -- is loaded into two NiiVue instances with a
window that clips at both ends: one with ``nv.qsmreviewCpuColormap = true`` (the RGBA volume
texture built on the CPU) and one without (NiiVue's 90-pass colour-map shader). Both RGBA 3-D
textures are read back slice by slice through a framebuffer and must agree within 1/255 per
channel. No Django: the page, the vendored module and the NIfTI are served by Playwright routes.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SERVED = ROOT / "frontend" / "static" / "vendor" / "niivue" / "index.js"
ORIGIN = "http://qsmreview.test"
PAGE = """<!doctype html><html><body style="margin:0">
<canvas id="a" width="128" height="128"></canvas><canvas id="b" width="128" height="128"></canvas>
</body></html>"""

COMPARE = """async ([colormap, calMin, calMax, invert]) => {
  const { Niivue } = await import("/vendor/niivue/index.js");
  async function texture(canvasId, cpu) {
    const canvas = document.getElementById(canvasId);
    canvas.qsmreviewLazyShaders = true;
    const nv = new Niivue({ backColor: [0, 0, 0, 1] });
    nv.qsmreviewSkipGradient = true;
    if (cpu) nv.qsmreviewCpuColormap = true;
    await nv.attachToCanvas(canvas);
    await nv.loadVolumes([{ url: "/vol.nii", name: "vol.nii", colormap, cal_min: calMin, cal_max: calMax }]);
    if (invert) { nv.volumes[0].colormapInvert = true; nv.updateGLVolume(); }
    const gl = nv.gl;
    const dims = nv.volumes[0].dimsRAS;
    const fb = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
    const out = new Uint8Array(dims[1] * dims[2] * dims[3] * 4);
    const slice = dims[1] * dims[2] * 4;
    for (let z = 0; z < dims[3]; z++) {
      gl.framebufferTextureLayer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, nv.volumeTexture, 0, z);
      if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) throw new Error("framebuffer");
      gl.readPixels(0, 0, dims[1], dims[2], gl.RGBA, gl.UNSIGNED_BYTE, out.subarray(z * slice, (z + 1) * slice));
    }
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.deleteFramebuffer(fb);
    return { out, nv };
  }
  const gpu = await texture("a", false);
  const cpu = await texture("b", true);
  let maxDiff = 0, nDiff = 0, first = null;
  for (let i = 0; i < gpu.out.length; i++) {
    const d = Math.abs(gpu.out[i] - cpu.out[i]);
    if (d > 0) nDiff++;
    if (d > maxDiff) { maxDiff = d; first = [i, gpu.out[i], cpu.out[i]]; }
  }
  const distinct = new Set();
  for (let i = 0; i < gpu.out.length; i += 4) distinct.add(gpu.out[i] * 65536 + gpu.out[i + 1] * 256 + gpu.out[i + 2]);
  const v = cpu.nv.volumes[0];
  return {
    n: gpu.out.length, maxDiff, nDiff, first, distinct: distinct.size,
    cpuCount: cpu.nv.qsmreviewCpuColormapCount || 0, gpuCount: gpu.nv.qsmreviewCpuColormapCount || 0,
    permRAS: Array.from(v.permRAS), dimsRAS: Array.from(v.dimsRAS), calMin: v.cal_min, calMax: v.cal_max,
  };
}"""


def _non_ras_volume() -> bytes:
    rng = np.random.default_rng(7)
    shape = (36, 44, 28)
    # Every uint8 value, plus smooth structure, so each colour-map entry and both clips are hit.
    data = (np.arange(np.prod(shape)) % 256).reshape(shape).astype(np.uint8)
    data[::3] = rng.integers(0, 256, size=data[::3].shape, dtype=np.uint8)
    # Voxel axes: i -> superior-inferior (flipped), j -> right-left (flipped), k -> anterior;
    # then tilted by 12 degrees about x and 7 about z (oblique).
    perm = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]) @ np.diag([0.9, 1.1, 2.0])
    ax, az = np.radians(12.0), np.radians(7.0)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ perm
    affine[:3, 3] = [20.0, -30.0, 15.0]
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(np.uint8)
    img.header.set_slope_inter(0.5, 3.0)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    return img.to_bytes()


@pytest.fixture
def served_page(page):
    if not SERVED.exists():
        pytest.skip("NiiVue not vendored: run scripts/vendor")
    volume = _non_ras_volume()
    page.route(f"{ORIGIN}/", lambda route: route.fulfill(body=PAGE, content_type="text/html"))
    page.route(
        f"{ORIGIN}/vendor/niivue/index.js",
        lambda route: route.fulfill(body=SERVED.read_bytes(), content_type="text/javascript"),
    )
    page.route(f"{ORIGIN}/vol.nii", lambda route: route.fulfill(body=volume, content_type="application/octet-stream"))
    page.goto(f"{ORIGIN}/")
    return page


@pytest.mark.parametrize(
    ("colormap", "cal_min", "cal_max", "invert"),
    [
        ("gray", 20.0, 90.0, False),
        ("hot", 40.0, 110.0, False),
        ("warm", 11.0, 70.5, True),
        # The first value above cal_min lands ~0.001 into the map: the shader's 2/256 round-up.
        ("hot", 20.25, 200.0, False),
    ],
)
def test_the_cpu_colour_map_matches_niivues_gpu_pass(served_page, colormap, cal_min, cal_max, invert) -> None:
    result = served_page.evaluate(COMPARE, [colormap, cal_min, cal_max, invert])
    # The patched path ran for the CPU instance only, on a volume NiiVue had to reorder.
    assert result["cpuCount"] >= 1 and result["gpuCount"] == 0, result
    assert result["permRAS"] != [1, 2, 3] and any(p < 0 for p in result["permRAS"]), result
    assert sorted(result["dimsRAS"][1:]) == [28, 36, 44] and result["dimsRAS"][1:] != [36, 44, 28], result
    assert (result["calMin"], result["calMax"]) == (cal_min, cal_max)
    assert result["distinct"] > 50, result  # a window that clips, but many colours in between
    assert result["maxDiff"] <= 1, result
