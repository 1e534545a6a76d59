// A read-only NiiVue viewer for one series, with an optional overlay of another series.
//
// Reusable: the series page wires it to its controls (series_view.js); the rater workspace
// imports the same module and adds drawing on top. Everything NiiVue-specific stays here.
//
//   import { createViewer } from "/static/qsmreview/viewer.js";
//   const viewer = await createViewer(canvas, { niivueUrl });
//   await viewer.loadSeries({ url, name: "x.nii.gz", kind: "qsm", units: "ppm" });
//   viewer.setWindow(-0.15, 0.15);
//   await viewer.addOverlay({ url, name: "y.nii.gz", colormap: "warm", opacity: 0.5 });
//
// Units: QSM volumes hold susceptibility in ppm; its window is symmetric about 0 and in ppm.

/** A blue-white-red map (ColorBrewer RdBu, reversed): negative (diamagnetic) blue, 0 white,
 * positive (paramagnetic) red. NiiVue 0.69 ships no balanced diverging map: its blue2red has a
 * green centre and a transparent low end. */
export const QSM_COLORMAP = "qsm_rdbu";
const QSM_COLORMAP_LUT = {
  R: [5, 33, 146, 247, 244, 178, 103],
  G: [48, 102, 197, 247, 165, 24, 0],
  B: [97, 172, 222, 247, 130, 43, 31],
  A: [255, 255, 255, 255, 255, 255, 255],
  I: [0, 42, 85, 128, 170, 213, 255],
};

/** Default half-width of the QSM window, in ppm. */
export const QSM_DEFAULT_HALF_WINDOW_PPM = 0.15;

/** Colour maps offered for an overlay (names NiiVue 0.69 knows, plus the QSM map). */
export const OVERLAY_COLORMAPS = ["warm", "hot", "red", "green", "winter", "gray", QSM_COLORMAP];

/** Is this series kind shown with the diverging QSM map and a window in ppm? */
export function isSusceptibility(kind) {
  return kind === "qsm";
}

/** Is this series kind a label image (masks, tissue classes): nearest look, fixed window? */
export function isLabelKind(kind) {
  return kind === "brain_mask" || kind === "lesion_mask" || kind === "tissue";
}

/** NiiVue's module when the page passes none (pages should pass `{% static %}`'s hashed URL). */
const DEFAULT_NIIVUE_URL = "/static/vendor/niivue/index.js";

let niivueModule = null;

/** NiiVue's ES module (loaded once): for pages that need more of it (NVImage, SLICE_TYPE). */
export async function loadNiivue(niivueUrl) {
  if (!niivueModule) niivueModule = await import(niivueUrl || DEFAULT_NIIVUE_URL);
  return niivueModule;
}

/** Slice types by name (NiiVue's SLICE_TYPE values). */
export const SLICE_TYPES = { axial: 0, coronal: 1, sagittal: 2, multiplanar: 3 };

function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}

/**
 * Create a viewer on a canvas.
 *
 * @param {HTMLCanvasElement} canvas
 * @param {object} options
 * @param {string} [options.niivueUrl] - URL of NiiVue's ES module (the vendored index.js)
 * @param {boolean} [options.multiplanar=true] - axial, coronal and sagittal tiles (no 3-D tile)
 * @param {number[]} [options.crosshairColor] - RGBA in 0..1
 * @param {string} [options.sliceType] - "axial", "coronal", "sagittal" or "multiplanar"
 *   (overrides `multiplanar`)
 * @param {object} [options.niivueOptions] - more options for NiiVue's constructor
 * @param {boolean} [options.gradient=false] - compute NiiVue's 3-D gradient volume on every load
 *   and window change (needed only by a 3-D render tile, which no page here shows). Off, the
 *   vendored NiiVue skips it (a guard that scripts/vendor patches in): in software WebGL the
 *   pass costs ~3 s per 384 x 384 x 90 volume.
 * @param {boolean} [options.lazyShaders=true] - compile NiiVue's shader programs on first use
 *   (another scripts/vendor patch); false compiles all of them up front, as stock NiiVue does.
 * @param {boolean} [options.cpuColormap=true] - build the base volume's colour-mapped texture on
 *   the CPU when NiiVue's pass can be reproduced exactly (uint8, plain map, opacity 1; a third
 *   scripts/vendor patch); false keeps NiiVue's GPU pass for every volume.
 * @returns {Promise<Viewer>}
 */
export async function createViewer(canvas, options = {}) {
  const { Niivue, SLICE_TYPE, SHOW_RENDER } = await loadNiivue(options.niivueUrl || DEFAULT_NIIVUE_URL);
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: options.crosshairColor || [0.1, 0.9, 0.3, 1],
    show3Dcrosshair: false,
    isColorbar: true,
    isRadiologicalConvention: false,
    multiplanarShowRender: SHOW_RENDER ? SHOW_RENDER.NEVER : 0,
    loadingText: "loading...",
    ...(options.niivueOptions || {}),
  });
  // Read by the guard scripts/vendor patches into NiiVue's refreshLayers (a stock NiiVue ignores it).
  nv.qsmreviewSkipGradient = !options.gradient;
  // Read by the lazy-shader patch in NiiVue's Shader (scripts/vendor): compile each of NiiVue's
  // ~48 shader programs on its first use instead of all of them in attachToCanvas (a 2-D viewer
  // uses about a quarter of them; in software WebGL every compiled program costs CPU time).
  if (options.lazyShaders !== false) canvas.qsmreviewLazyShaders = true;
  // Read by the CPU colour-map patch in NiiVue's refreshLayers (scripts/vendor): a uint8 base
  // volume with a plain colour map gets its RGBA volume texture built on the CPU and uploaded once
  // instead of NiiVue's 90 render passes (checked against them by tests/e2e/test_cpu_colormap.py);
  // anything else takes NiiVue's own pass.
  if (options.cpuColormap !== false) nv.qsmreviewCpuColormap = true;
  await nv.attachToCanvas(canvas);
  nv.addColormap(QSM_COLORMAP, QSM_COLORMAP_LUT);
  if (options.sliceType) nv.setSliceType(SLICE_TYPES[options.sliceType] ?? SLICE_TYPE.AXIAL);
  else if (options.multiplanar !== false) nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  return new Viewer(nv);
}

/**
 * Fetch and decode a series into NiiVue's NVImage without touching any viewer or the GPU (so
 * several can download and parse in parallel while the viewers are set up); show it with
 * ``viewer.showImage(image, series)``. The display window is fixed here, from the data, before
 * the first upload: QSM gets its symmetric window in ppm, anything else NiiVue's robust range
 * from ``series.niivueOptions`` (percentileFrac, ignoreZeroVoxels; trustCalMinMax false ignores
 * the header's cal_min/cal_max).
 */
export async function fetchSeriesImage(series, { niivueUrl } = {}) {
  const { NVImage } = await loadNiivue(niivueUrl || DEFAULT_NIIVUE_URL);
  const susceptibility = isSusceptibility(series.kind);
  const half = series.halfWindow ?? QSM_DEFAULT_HALF_WINDOW_PPM;
  const image = await NVImage.loadFromUrl({
    url: series.url,
    name: series.name,
    colormap: series.colormap || (susceptibility ? QSM_COLORMAP : "gray"),
    ...(series.niivueOptions || {}),
  });
  if (!image?.img) throw new Error(`the volume at ${series.url} could not be read`);
  if (susceptibility) {
    image.cal_min = -half;
    image.cal_max = half;
  }
  return image;
}

/** One NiiVue instance showing a base series and at most one overlay. */
export class Viewer {
  constructor(nv) {
    this.nv = nv;
    this.base = null; // the series options of volumes[0]
    this.overlay = null; // the series options of volumes[1], or null
    this._listeners = { location: [], window: [] };
    nv.addEventListener("locationChange", (event) => this._emitLocation(event.detail));
    nv.addEventListener("intensityChange", () => this._emitWindow());
  }

  /** The base volume (NiiVue's volumes[0]), or null before loading. */
  get volume() {
    return this.nv.volumes[0] || null;
  }

  /**
   * Show a series as the base volume (replaces everything loaded before).
   *
   * @param {object} series
   * @param {string} series.url - the volume URL (e.g. /api/v1/series/7/volume/)
   * @param {string} series.name - a file name with the right extension (NiiVue picks the format
   *   from it; the API URL has none), e.g. "x.nii.gz"
   * @param {string} series.kind - the series kind (qsm gets the diverging map)
   * @param {string} [series.units] - value units shown with the crosshair value (e.g. "ppm")
   * @param {number} [series.halfWindow] - QSM only: the symmetric window, in ppm
   * @param {object} [series.niivueOptions] - more of NiiVue's volume options (e.g. the
   *   percentiles of its initial window: percentileFrac, ignoreZeroVoxels, trustCalMinMax)
   */
  async loadSeries(series) {
    const susceptibility = isSusceptibility(series.kind);
    const half = series.halfWindow ?? QSM_DEFAULT_HALF_WINDOW_PPM;
    const options = {
      url: series.url,
      name: series.name,
      colormap: series.colormap || (susceptibility ? QSM_COLORMAP : "gray"),
      ...(series.niivueOptions || {}),
    };
    if (susceptibility) {
      options.cal_min = -half;
      options.cal_max = half;
    }
    this.overlay = null;
    await this.nv.loadVolumes([options]);
    if (!this.volume) throw new Error(`the volume at ${series.url} could not be read`);
    this.base = { ...series };
    if (isLabelKind(series.kind)) this.nv.setInterpolation(true);
    if (susceptibility) this.setWindow(-half, half);
    await nextFrame();
    this._emitWindow();
    this.nv.createOnLocationChange(); // the value at the start position, before any click
    return this.volume;
  }

  /**
   * Show an image already fetched and decoded by ``fetchSeriesImage`` as the base volume (the
   * viewer must be empty). One GPU upload and colour-map pass, queued without waiting for it:
   * the caller waits for pixels once, after all its viewers are queued.
   */
  showImage(image, series) {
    if (this.nv.volumes.length) throw new Error("showImage needs an empty viewer");
    this.overlay = null;
    this.nv.addVolume(image); // updateGLVolume: upload, colour map (no gradient: see createViewer)
    this.base = { ...series };
    if (isLabelKind(series.kind)) this.nv.setInterpolation(true);
    this._emitWindow();
    this.nv.createOnLocationChange();
    return this.volume;
  }

  /** Number of volumes along the 4th axis of the base series (echoes), 1 for a 3-D series. */
  get frameCount() {
    return this.volume ? Math.max(1, this.volume.nFrame4D || 1) : 0;
  }

  /** Show one echo (0-based) of a 4-D base series. */
  setFrame(index) {
    const vol = this.volume;
    if (!vol) return;
    const frame = Math.max(0, Math.min(this.frameCount - 1, index | 0));
    this.nv.setFrame4D(vol.id, frame);
  }

  /** The base volume's display window [min, max] in its value units. */
  getWindow() {
    const vol = this.volume;
    return vol ? [vol.cal_min, vol.cal_max] : [NaN, NaN];
  }

  /** Set the base volume's display window (values at or beyond the ends take the end colours). */
  setWindow(min, max) {
    const vol = this.volume;
    if (!vol || !Number.isFinite(min) || !Number.isFinite(max) || !(max > min)) return false;
    vol.cal_min = min;
    vol.cal_max = max;
    this.nv.updateGLVolume();
    this._emitWindow();
    return true;
  }

  /** A symmetric window about 0 (QSM): [-half, +half]. */
  setSymmetricWindow(half) {
    return half > 0 ? this.setWindow(-half, half) : false;
  }

  /** Preset windows for the base volume: robust (2-98 %) and full range. */
  rangeOf(which) {
    const vol = this.volume;
    if (!vol) return [NaN, NaN];
    if (which === "full") return [vol.global_min, vol.global_max];
    return [vol.robust_min, vol.robust_max];
  }

  /**
   * A window from percentiles of the base volume's non-zero voxels (zero is background in
   * skull-stripped and resampled volumes and would pull every percentile down), in calibrated
   * units. ``lo`` and ``hi`` are fractions (0.01, 0.99). At most ~2 million voxels are sampled.
   */
  percentileWindow(lo, hi) {
    const vol = this.volume;
    if (!vol?.img) return [NaN, NaN];
    const img = vol.img;
    const d = vol.hdr?.dims;
    const n = d ? Math.min(img.length, d[1] * d[2] * d[3]) : img.length; // first frame only
    const step = Math.max(1, Math.floor(n / 2_000_000));
    const slope = Number.isFinite(vol.hdr?.scl_slope) && vol.hdr.scl_slope !== 0 ? vol.hdr.scl_slope : 1;
    const inter = Number.isFinite(vol.hdr?.scl_inter) ? vol.hdr.scl_inter : 0;
    const values = [];
    for (let i = 0; i < n; i += step) {
      const v = img[i];
      if (v !== 0 && Number.isFinite(v)) values.push(v);
    }
    if (values.length === 0) return [vol.global_min, vol.global_max];
    const sorted = Float64Array.from(values).sort();
    const at = (f) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(f * (sorted.length - 1))))] * slope + inter;
    const [a, b] = [at(lo), at(hi)];
    return b > a ? [a, b] : [vol.global_min, vol.global_max];
  }

  /** Show one plane ("axial", "coronal", "sagittal") or all three ("multiplanar"). */
  setSliceType(name) {
    this.nv.setSliceType(SLICE_TYPES[name] ?? SLICE_TYPES.axial);
  }

  /** Fit the canvas to its (resized) box and redraw. */
  resize() {
    this.nv.resizeListener();
  }

  /** Change the base volume's colour map. */
  setColormap(name) {
    if (this.volume) this.nv.setColormap(this.volume.id, name);
    this._emitWindow();
  }

  /**
   * Lay another series over the base one (replacing a previous overlay). NiiVue resamples it
   * onto the base grid through both affines, so a series on its own grid shows where the scanner
   * put it: the way to judge a registration by eye.
   *
   * @param {object} series - {url, name, kind, colormap?, opacity?}
   */
  async addOverlay(series) {
    this.removeOverlay();
    const options = {
      url: series.url,
      name: series.name,
      colormap: series.colormap || (isSusceptibility(series.kind) ? QSM_COLORMAP : "warm"),
      opacity: series.opacity ?? 0.5,
    };
    if (isSusceptibility(series.kind)) {
      options.cal_min = -QSM_DEFAULT_HALF_WINDOW_PPM;
      options.cal_max = QSM_DEFAULT_HALF_WINDOW_PPM;
    }
    await this.nv.addVolumeFromUrl(options);
    this.overlay = { ...series, ...options };
    await nextFrame();
    this.nv.createOnLocationChange();
    return this.nv.volumes[1] || null;
  }

  removeOverlay() {
    while (this.nv.volumes.length > 1) this.nv.removeVolume(this.nv.volumes[this.nv.volumes.length - 1]);
    this.overlay = null;
  }

  setOverlayOpacity(opacity) {
    if (this.nv.volumes.length > 1) this.nv.setOpacity(1, Math.max(0, Math.min(1, opacity)));
  }

  setOverlayColormap(name) {
    if (this.nv.volumes.length > 1) this.nv.setColormap(this.nv.volumes[1].id, name);
  }

  /** A CSS linear-gradient of a colour map (for a colourbar drawn outside the canvas). */
  colormapGradient(name, stops = 9) {
    const lut = this.nv.colormap(name); // 256 x RGBA
    const parts = [];
    for (let i = 0; i < stops; i++) {
      const k = Math.round((i * 255) / (stops - 1));
      parts.push(`rgb(${lut[4 * k]}, ${lut[4 * k + 1]}, ${lut[4 * k + 2]}) ${((100 * i) / (stops - 1)).toFixed(1)}%`);
    }
    return `linear-gradient(to right, ${parts.join(", ")})`;
  }

  /** Colour maps NiiVue knows (its own and ours). */
  colormaps() {
    return this.nv.colormaps();
  }

  /** Listen to crosshair moves: cb({mm: [x,y,z], vox: [i,j,k], value, overlayValue}). */
  onLocation(cb) {
    this._listeners.location.push(cb);
  }

  /** Listen to window changes (inputs, presets, right-drag): cb([min, max]). */
  onWindow(cb) {
    this._listeners.window.push(cb);
  }

  _emitLocation(detail) {
    if (!detail) return;
    const values = detail.values || [];
    const info = {
      mm: Array.from(detail.mm || []).slice(0, 3),
      vox: Array.from(values[0]?.vox || detail.vox || []).slice(0, 3),
      value: values[0]?.value,
      overlayValue: values.length > 1 ? values[1].value : undefined,
    };
    for (const cb of this._listeners.location) cb(info);
  }

  _emitWindow() {
    const win = this.getWindow();
    for (const cb of this._listeners.window) cb(win);
  }
}

/** A value for display: `0.0423 ppm`, with fewer digits for big numbers. */
export function formatValue(value, units = "") {
  if (value === undefined || value === null || !Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  let text;
  if (abs !== 0 && abs < 0.001) text = value.toExponential(2);
  else if (abs < 10) text = value.toFixed(4);
  else if (abs < 1000) text = value.toFixed(1);
  else text = value.toFixed(0);
  return units ? `${text} ${units}` : text;
}
