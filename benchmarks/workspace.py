"""Benchmark the rater workspace: display volumes, viewer readiness, pen latency, mask saves.

Run from the project root::

    .venv/bin/python benchmarks/workspace.py                       # 384 x 384 x 90, every figure
    .venv/bin/python benchmarks/workspace.py --no-browser          # server figures only (1, 4)
    .venv/bin/python benchmarks/workspace.py --size 96x96x30 --runs 1
    .venv/bin/python benchmarks/workspace.py --with-gradient       # also: NiiVue with its 3-D
                                                                   # gradient pass back (stock)

Everything runs on a throw-away SQLite database and media folder in a temporary directory. One
session holds four synthetic volumes on one grid (T2* magnitude with 3 echoes (4-D, int16),
FLAIR, T1 WM-nulled, T1 CSF-nulled (int16)), assigned to a rater. Printed:

1. display volumes (``/api/v1/series/<id>/display/``): the server's first request per volume
   (it computes and caches the uint8 volume), a cached request, a 304 revalidation, the bytes of a
   case; in Chromium, fetch + NIfTI decode of the four volumes (NiiVue's ``NVImage``) in
   parallel, then the same again from the browser cache (the server answers 304);
2. viewer ready: from navigation to ``/rate/<id>/`` until every panel's pixels are on screen
   (the page's ``data-ready`` marker, then each canvas drawn and read back with ``readPixels``,
   which waits for the GPU's queued work); target <= 8 s;
3. pen latency: pen moves on the first panel (axial, no 3-D tile), each timed from dispatch
   until its pixels are read back at the next animation frame (the page draws at most once per
   frame while the pen is down); target <= 100 ms per move;
4. saving: the server's time to store one mask revision through
   :func:`qsmreview.annotations.services.revision_create` (median of N; target <= 100 ms) and the
   upload size of a typical mask (a few lesions, gzip as the browser sends it).

The browser is Debian's Chromium driven by Playwright (launch arguments from
tests/fixtures/browser.py: software WebGL through SwiftShader); the server is ``manage.py
runserver`` (threaded; static files collected and served by WhiteNoise) in a child process. Figures only: nothing
here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.grid import matrix_size  # noqa: E402

FULL_SHAPE = (384, 384, 90)
FULL_VOXEL_MM = (0.47, 0.47, 1.0)
KINDS = ("t2star_mag", "flair", "t1_wmn", "t1_csfn")
ECHO_TIMES_S = (0.006, 0.012, 0.018)
RATER = ("bench_rater", "bench-pw")
ADMIN = ("bench_admin", "bench-pw")
VIEWPORT = {"width": 1600, "height": 900}
TARGET_READY_S = 8.0
TARGET_PEN_MS = 100.0
TARGET_SAVE_MS = 100.0


# --- data ------------------------------------------------------------------------------------


def _voxel_for(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """Keep the 180 x 180 x 90 mm field of view of the full-size slab."""
    return tuple(round(f * v / n, 4) for f, v, n in zip(FULL_SHAPE, FULL_VOXEL_MM, shape))  # type: ignore[return-value]


def synthetic_volumes(shape: tuple[int, int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Four head-like int16 volumes (T2* magnitude 4-D with 3 echoes): an ellipsoid head, a
    brain with grey/white contrast, ventricles and a few lesions, plus noise."""
    rng = np.random.default_rng(seed)
    g = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    r2 = g[0] ** 2 + g[1] ** 2 + (1.2 * g[2]) ** 2
    head, brain, wm = r2 <= 0.85, r2 <= 0.7, r2 <= 0.45
    vent = (g[0] ** 2 / 0.02 + g[1] ** 2 / 0.08 + g[2] ** 2 / 0.1) <= 1
    lesions = np.zeros(shape, bool)
    for c in ((0.3, 0.2, 0.1), (-0.35, 0.1, -0.1), (0.1, -0.4, 0.2), (-0.2, -0.3, 0.0)):
        lesions |= sum((gi - ci) ** 2 for gi, ci in zip(g, c)) <= 0.004
    def contrast(scalp: float, gm: float, w: float, csf: float, les: float) -> np.ndarray:
        img = np.where(head, scalp, 0.0).astype(np.float32)
        img[brain] = gm
        img[wm] = w
        img[vent] = csf
        img[lesions] = les
        img += rng.normal(0, 0.03 * max(gm, w), shape).astype(np.float32)
        return img
    base = contrast(600, 900, 1000, 1200, 1100)
    decay = np.exp(-np.asarray(ECHO_TIMES_S, np.float32) / 0.03)
    mag = np.clip(base[..., None] * decay, 0, None)
    return {
        "t2star_mag": mag.astype(np.int16),
        "flair": np.clip(contrast(300, 700, 550, 80, 1400), 0, None).astype(np.int16),
        "t1_wmn": np.clip(contrast(500, 800, 150, 1000, 300), 0, None).astype(np.int16),
        "t1_csfn": np.clip(contrast(500, 600, 900, 100, 400), 0, None).astype(np.int16),
    }


def lesion_mask(shape: tuple[int, int, int], n: int = 5, seed: int = 1) -> np.ndarray:
    """A typical rater's mask: ``n`` blobs of 3-5 voxels radius in the middle of the volume."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, sparse=True)
    mask = np.zeros(shape, np.uint8)
    for _ in range(n):
        centre = [rng.uniform(0.3 * s, 0.7 * s) for s in shape]
        radius = rng.uniform(3, 5) * np.array([1.0, 1.0, max(shape[2] / shape[0], 0.35)])
        mask[sum(((gi - c) / r) ** 2 for gi, c, r in zip(grid, centre, radius)) <= 1] = 1
    return mask


def mask_upload(mask: np.ndarray, affine: np.ndarray) -> bytes:
    """The mask as the workspace uploads it: uncompressed NIfTI from NiiVue, gzip-compressed
    (CompressionStream's gzip is zlib level 6)."""
    import nibabel as nib

    return gzip.compress(nib.Nifti1Image(mask, affine).to_bytes(), compresslevel=6, mtime=0)


def make_case(shape: tuple[int, int, int]) -> dict[str, Any]:
    """Users, a study, a session with the four volumes, and its assignment to the rater.

    Runs in a configured Django (any database). Returns ids and the grid.
    """
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from qsmreview.access import system
    from qsmreview.annotations.services import assignment_create
    from qsmreview.studies.models import Membership, Session, Study, Subject
    from qsmreview.studies.services.series import series_create_derived

    users = get_user_model().objects
    admin = users.create_user(ADMIN[0], password=ADMIN[1])
    rater = users.create_user(RATER[0], password=RATER[1])
    study = Study.objects.create(name="Workspace benchmark", field_strength_t=7.0)
    Membership.objects.create(study=study, user=admin, role="admin")
    Membership.objects.create(study=study, user=rater, role="rater")
    subject = Subject.objects.create(study=study, code="B01")
    session = Session.objects.create(subject=subject, label="01", field_strength_t=7.0)
    voxel = _voxel_for(shape)
    affine = np.diag([*voxel, 1.0])
    affine[:3, 3] = [-(n - 1) * v / 2 for n, v in zip(shape, voxel)]
    series = {}
    for kind, data in synthetic_volumes(shape).items():
        extra = {"echo_times_s": list(ECHO_TIMES_S), "b0_t": 7.0} if kind == "t2star_mag" else {}
        series[kind] = series_create_derived(
            by=system("benchmark"), session=session, kind=kind, data=data, affine=affine,
            provenance={"source": "benchmarks/workspace.py"}, **extra,
        ).pk
    assignment = assignment_create(by=admin, session=session, rater=rater)
    return {
        "assignment": assignment.pk,
        "series": series,
        "affine": affine,
        "shape": shape,
        "token": Token.objects.create(user=rater).key,
    }


# --- (4) saving --------------------------------------------------------------------------------


def measure_saves(case: dict[str, Any], runs: int) -> dict[str, Any]:
    """Store ``runs`` revisions through the service, each from the latest (anchors kept)."""
    from qsmreview.annotations.models import Assignment
    from qsmreview.annotations.services import revision_create

    assignment = Assignment.objects.select_related("rater", "session__subject__study").get(pk=case["assignment"])
    mask = lesion_mask(case["shape"])
    upload = mask_upload(mask, case["affine"])
    times = []
    for i in range(runs):
        latest = assignment.latest_revision
        anchors = [
            {"number": les["number"], "anchor_mm": les["anchor_mm"], "vote": "wm", "confidence": 3, "note": ""}
            for les in (latest.lesions if latest else [])
        ]
        t0 = time.perf_counter()
        revision = revision_create(
            by=assignment.rater, assignment=assignment, mask_bytes=upload, parent=latest, lesions=anchors,
            active_seconds=5.0,
        )
        times.append(time.perf_counter() - t0)
    return {
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
        "max_ms": 1000 * max(times),
        "runs": runs,
        "upload_bytes": len(upload),
        "raw_bytes": 352 + mask.size,
        "lesions": len(revision.lesions),
        "mask_voxels": int(mask.sum()),
    }


# --- (1) display volumes over HTTP -------------------------------------------------------------


def _http(url: str, token: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict, bytes, float]:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Token {token}", **(headers or {})})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            body = response.read()
            status, head = response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        body, status, head = exc.read(), exc.code, dict(exc.headers)
    return status, head, body, time.perf_counter() - t0


def measure_display_http(base: str, case: dict[str, Any]) -> list[dict[str, Any]]:
    """Per volume: first GET (computes), cached GET, 304 revalidation, HEAD."""
    rows = []
    for kind, pk in case["series"].items():
        url = f"{base}/api/v1/series/{pk}/display/"
        status, head, body, first = _http(url, case["token"])
        assert status == 200, (status, body[:200])
        _, _, again, cached = _http(url, case["token"])
        assert again == body
        status_304, _, _, revalidate = _http(url, case["token"], headers={"If-None-Match": head["ETag"]})
        _, _, _, head_s = _http(url, case["token"], method="HEAD")
        rows.append({
            "kind": kind, "bytes": len(body), "first_ms": 1000 * first, "cached_ms": 1000 * cached,
            "status_304": status_304, "revalidate_ms": 1000 * revalidate, "head_ms": 1000 * head_s,
            "etag": head["ETag"], "cache_control": head.get("Cache-Control", ""),
        })
    return rows


# --- the server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def django_env(workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "qsmreview.test_settings",
        "QSMREVIEW_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "media"),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    out = open(log, "wb")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/accounts/login/", timeout=2).read()
            return proc, base
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"runserver exited: {log.read_text()[-2000:]}")
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("runserver did not answer within 60 s")


# --- (1)-(3) in Chromium ------------------------------------------------------------------------

# scripts/vendor guards the 3-D gradient pass (blur + Sobel over every slice, used only by the 3-D
# render) that NiiVue 0.69's refreshLayers runs for the background layer after every load and
# every contrast change; the workspace's viewers skip it. --with-gradient serves a copy of the
# vendored module with the guard removed (stock NiiVue's behaviour), for comparison.
GRADIENT_GUARDED = "if (!this.qsmreviewSkipGradient) this.gradientTexture = gradientGL({"
GRADIENT_STOCK = "this.gradientTexture = gradientGL({"
# scripts/vendor's CPU colour-map patch builds the base volume's RGBA texture on the CPU when the
# viewer sets nv.qsmreviewCpuColormap; --gpu-colormap makes that flag unsettable in the page (an
# init script: a no-op setter on Object.prototype), so every volume takes NiiVue's own 90-pass
# colour map, for back-to-back comparison. Not a route: Playwright's routing disables the HTTP
# cache, which would make the opens re-download the volumes.
GPU_COLORMAP_INIT = """
Object.defineProperty(Object.prototype, "qsmreviewCpuColormap", {
  get() { return false; }, set(_) {}, configurable: true,
});
"""

_FETCH_DECODE_JS = """
async (urls) => {
  const { NVImage } = await import(urls.niivue);
  const t0 = performance.now();
  const one = async (url) => {
    const s = performance.now();
    const img = await NVImage.loadFromUrl({ url, name: "display.nii" });
    return { ms: performance.now() - s, dims: Array.from(img.hdr.dims.slice(1, 4)), datatype: img.hdr.datatypeCode };
  };
  const each = await Promise.all(urls.volumes.map(one));
  const total = performance.now() - t0;
  const entries = performance.getEntriesByType("resource").filter((e) => e.name.includes("/display/")).slice(-urls.volumes.length);
  return { total, each, transfer: entries.map((e) => e.transferSize), body: entries.map((e) => e.encodedBodySize) };
}
"""

_PIXELS_JS = """
() => {
  // Draw every panel now and read pixels back: readPixels returns only when the GPU has done
  // all queued work. A panel counts as shown when >= 5 of 9 points in its middle are not black.
  return qsmWorkspace.viewers.map((viewer) => {
    const nv = viewer.nv, gl = nv.gl;
    nv.drawScene();
    const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight, px = new Uint8Array(4);
    let lit = 0;
    for (const fx of [0.35, 0.5, 0.65]) for (const fy of [0.35, 0.5, 0.65]) {
      gl.readPixels(Math.floor(fx * w), Math.floor(fy * h), 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
      if (px[0] + px[1] + px[2] > 30) lit++;
    }
    return { lit, width: nv.canvas.width, height: nv.canvas.height };
  });
}
"""

_READBACK_JS = """
() => new Promise((resolve) => requestAnimationFrame(() => {
  // At the next animation frame (after any draw the page scheduled for it), read a pixel back:
  // readPixels returns only when the GPU has done all queued work.
  const gl = qsmWorkspace.viewers[0].nv.gl; const px = new Uint8Array(4);
  gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); resolve(px[0]);
}))
"""


def _login(page: Any, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", RATER[0])
    page.fill("input[name=password]", RATER[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _open_case(page: Any, base: str, assignment: int) -> dict[str, Any]:
    page.goto(f"{base}/rate/{assignment}/")
    page.wait_for_selector('[data-testid="workspace"][data-ready="1"], [data-testid="workspace"][data-ready="error"]', timeout=300_000)
    state = page.get_attribute('[data-testid="workspace"]', "data-ready")
    if state != "1":
        raise RuntimeError(f"workspace error: {page.inner_text('[data-testid=ws-error]')}")
    marker_ms = page.evaluate("performance.now()")
    while True:
        panels = page.evaluate(_PIXELS_JS)
        if all(p["lit"] >= 5 for p in panels):
            break
        if page.evaluate("performance.now()") > 300_000:
            raise RuntimeError(f"panels never showed pixels: {panels}")
        page.wait_for_timeout(50)
    return {"marker_s": marker_ms / 1000, "pixels_s": page.evaluate("performance.now()") / 1000, "panels": panels}


def _pen_latency(page: Any, moves: int) -> dict[str, Any]:
    page.evaluate("qsmWorkspace.setTool('pen')")
    # The volume's centre on the first panel, in page pixels.
    centre = page.evaluate(
        "(() => { const v = qsmWorkspace.viewers[0].volume; const d = v.hdr.dims;"
        " const mm = v.vox2mm([(d[1]-1)/2, (d[2]-1)/2, (d[3]-1)/2], v.matRAS);"
        " return qsmWorkspace.screenOfMm(Array.from(mm), 0); })()"
    )
    overhead = []
    for _ in range(5):
        t0 = time.perf_counter()
        page.evaluate(_READBACK_JS)
        overhead.append(time.perf_counter() - t0)
    base_ms = 1000 * statistics.median(overhead)
    x, y = centre["x"], centre["y"]
    page.mouse.move(x, y)
    page.mouse.down()
    times = []
    for i in range(1, moves + 1):
        t0 = time.perf_counter()
        page.mouse.move(x + 2 * i, y + (i % 3))
        page.evaluate(_READBACK_JS)
        times.append(1000 * (time.perf_counter() - t0))
    page.mouse.up()
    return {
        "median_ms": statistics.median(times), "max_ms": max(times), "moves": moves,
        "roundtrip_ms": base_ms,
        "canvas": page.evaluate("[qsmWorkspace.viewers[0].nv.canvas.width, qsmWorkspace.viewers[0].nv.canvas.height]"),
        "slice_type": page.evaluate("qsmWorkspace.viewers[0].nv.opts.sliceType"),
    }


_TIMELINE_JS = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const end = (pred) => Math.max(0, ...res.filter(pred).map((e) => e.responseEnd));
  return {
    dom: nav.domContentLoadedEventEnd,
    niivue: end((e) => e.name.includes("/vendor/niivue/")),
    volumes: end((e) => e.name.includes("/display/")),
    cpuColormaps: (window.qsmWorkspace?.panels?.panels || []).map((p) => p.viewer?.nv?.qsmreviewCpuColormapCount || 0),
  };
}
"""


def _open_timed(page: Any, base: str, assignment: int) -> dict[str, Any]:
    row = _open_case(page, base, assignment)
    row["timeline"] = page.evaluate(_TIMELINE_JS)
    return row


def measure_browser(
    base: str, case: dict[str, Any], *, runs: int, moves: int, with_gradient: bool, workspace: bool, profile: Path,
    gpu_colormap: bool = False,
) -> dict[str, Any]:
    """Chromium figures. The browser has a profile on disk (``profile``), hence a disk cache as
    a rater's browser has (Playwright's default context keeps only a small in-memory cache, which
    does not keep 13 MB responses). With ``with_gradient`` a second context gets NiiVue with its
    3-D gradient pass back (the vendored guard removed), and the two contexts' opens alternate
    (same machine load)."""
    from playwright.sync_api import sync_playwright

    from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS

    volumes = [f"{base}/api/v1/series/{pk}/display/" for pk in case["series"].values()]
    results: dict[str, Any] = {"ready": [], "ready_gradient": []}
    with sync_playwright() as p:
        persistent = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT, device_scale_factor=1,
        )
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            if gpu_colormap:
                persistent.add_init_script(GPU_COLORMAP_INIT)
            page = persistent.new_page()
            _login(page, base)
            niivue = page.evaluate(
                "fetch(location.origin + '/rate/%d/').then(r => r.text()).then(t => t.match(/data-niivue=\"([^\"]+)\"/)[1])"
                % case["assignment"]
            )
            results["fetch_cold"] = page.evaluate(_FETCH_DECODE_JS, {"niivue": niivue, "volumes": volumes})
            results["fetch_cached"] = page.evaluate(_FETCH_DECODE_JS, {"niivue": niivue, "volumes": volumes})
            if not workspace:
                return results
            other = None
            if with_gradient:
                context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)

                def patched(route: Any) -> None:
                    response = route.fetch()
                    body = response.text()
                    if body.count(GRADIENT_GUARDED) != 1:
                        raise RuntimeError("the vendored NiiVue has no gradient guard: run scripts/vendor")
                    route.fulfill(response=response, body=body.replace(GRADIENT_GUARDED, GRADIENT_STOCK))

                context.route("**/vendor/niivue/index.js*", patched)
                other = context.new_page()
                _login(other, base)
            for _ in range(runs):
                results["ready"].append(_open_timed(page, base, case["assignment"]))
                if other is not None:
                    results["ready_gradient"].append(_open_timed(other, base, case["assignment"]))
            results["pen"] = _pen_latency(page, moves)
            if other is not None:
                results["pen_gradient"] = _pen_latency(other, moves)
        finally:
            browser.close()
            persistent.close()
    return results


# --- main ------------------------------------------------------------------------------------


def _setup_django(workdir: Path) -> dict[str, str]:
    env = django_env(workdir)
    for key in ("DJANGO_SETTINGS_MODULE", "QSMREVIEW_VAR_DIR", "DATABASE_URL", "MEDIA_ROOT"):
        os.environ[key] = env[key]
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # WhiteNoise serves the collected files, as in production (runserver's own static view is off).
    call_command("collectstatic", interactive=False, verbosity=0)
    return env


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg()) + " (1 / 5 / 15 min)"


def _fmt_ready(rows: list[dict[str, Any]]) -> str:
    def one(r: dict[str, Any]) -> str:
        t = r["timeline"]
        return (
            f"{r['pixels_s']:.1f} s [page {t['dom'] / 1000:.1f} s, NiiVue loaded {t['niivue'] / 1000:.1f} s, "
            f"volumes fetched {t['volumes'] / 1000:.1f} s, data-ready {r['marker_s']:.1f} s, "
            f"CPU colour maps {sum(1 for n in t.get('cpuColormaps', []) if n)}/{len(t.get('cpuColormaps', []))}]"
        )
    return "; ".join(one(r) for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="384x384x90", help="NXxNYxNZ of every volume (default 384x384x90)")
    parser.add_argument("--saves", type=int, default=15, help="revisions stored for the save timing (default 15)")
    parser.add_argument("--runs", type=int, default=2, help="workspace opens timed (default 2)")
    parser.add_argument("--moves", type=int, default=20, help="pen moves timed (default 20)")
    parser.add_argument("--no-browser", action="store_true", help="server figures only (1 and 4)")
    parser.add_argument("--no-workspace", action="store_true", help="no workspace page: figures 1 and 4 only")
    parser.add_argument("--with-gradient", action="store_true",
                        help="also time the page with NiiVue's 3-D gradient pass back (stock NiiVue; for comparison)")
    parser.add_argument("--gpu-colormap", action="store_true",
                        help="NiiVue's own colour-map pass for every volume (the vendored CPU colour-map patch off)")
    args = parser.parse_args(argv)
    shape = matrix_size(args.size)

    with tempfile.TemporaryDirectory(prefix="qsmreview-workspace-") as tmp:
        workdir = Path(tmp)
        env = _setup_django(workdir)
        t0 = time.perf_counter()
        case = make_case(shape)
        print(f"load average {_load()} on {os.cpu_count()} cores")
        print(f"case: 4 volumes of {'x'.join(map(str, shape))} (voxel {_voxel_for(shape)} mm; T2* magnitude "
              f"with {len(ECHO_TIMES_S)} echoes), stored in {time.perf_counter() - t0:.1f} s")

        saves = measure_saves(case, args.saves)
        print(
            f"(4) save one mask revision (service, median of {saves['runs']}): {saves['median_ms']:.1f} ms "
            f"(min {saves['min_ms']:.1f}, max {saves['max_ms']:.1f}; target <= {TARGET_SAVE_MS:.0f} ms); "
            f"upload {saves['upload_bytes'] / 1024:.1f} KiB gzip for {saves['raw_bytes'] / 2**20:.1f} MiB "
            f"uncompressed ({saves['lesions']} lesions, {saves['mask_voxels']} voxels)"
        )

        from django.db import connections

        connections.close_all()
        server, base = start_server(env, workdir / "runserver.log")
        try:
            rows = measure_display_http(base, case)
            total = sum(r["bytes"] for r in rows)
            print(f"(1) display volumes over HTTP (runserver, localhost): {total / 2**20:.1f} MiB per case")
            for r in rows:
                print(
                    f"    {r['kind']:<10} {r['bytes'] / 2**20:6.2f} MiB  first (computes) {r['first_ms']:7.1f} ms  "
                    f"cached {r['cached_ms']:6.1f} ms  304 {r['revalidate_ms']:5.1f} ms (status {r['status_304']})  "
                    f"HEAD {r['head_ms']:5.1f} ms"
                )
            print(f"    ETag {rows[0]['etag']}, Cache-Control: {rows[0]['cache_control']}")
            if not args.no_browser:
                res = measure_browser(
                    base, case, runs=args.runs, moves=args.moves, with_gradient=args.with_gradient,
                    workspace=not args.no_workspace, profile=workdir / "chromium-profile",
                    gpu_colormap=args.gpu_colormap,
                )
                cold, warm = res["fetch_cold"], res["fetch_cached"]
                each = ", ".join(f"{e['ms']:.0f}" for e in cold["each"])
                print(
                    f"    Chromium fetch + decode, 4 in parallel: {cold['total']:.0f} ms "
                    f"(each {each} ms; transferred "
                    f"{sum(cold['transfer']) / 2**20:.1f} MiB)"
                )
                print(
                    f"    second open (browser cache, 304): {warm['total']:.0f} ms "
                    f"(transferred {sum(warm['transfer'])} bytes of {sum(warm['body']) / 2**20:.1f} MiB)"
                )
                if args.no_workspace:
                    return 0
                panels = res["ready"][-1]["panels"]
                sizes = ", ".join(f"{p['width']}x{p['height']}" for p in panels)
                print(f"(2) viewer ready (navigation -> pixels on every panel; canvases {sizes} px; "
                      f"target <= {TARGET_READY_S:.0f} s): {_fmt_ready(res['ready'])}")
                pen = res["pen"]
                print(
                    f"(3) pen move, dispatch -> pixels read back ({pen['canvas'][0]}x{pen['canvas'][1]} px, slice type "
                    f"{pen['slice_type']}, no 3-D tile): median {pen['median_ms']:.0f} ms, max {pen['max_ms']:.0f} ms "
                    f"over {pen['moves']} moves (includes ~{pen['roundtrip_ms']:.1f} ms of Playwright round trip); "
                    f"target <= {TARGET_PEN_MS:.0f} ms"
                )
                if args.with_gradient:
                    pen = res["pen_gradient"]
                    print(f"    with NiiVue's 3-D gradient pass back (stock; runs alternate with the above): "
                          f"ready {_fmt_ready(res['ready_gradient'])}; "
                          f"pen median {pen['median_ms']:.0f} ms, max {pen['max_ms']:.0f} ms")
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"load average {_load()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
