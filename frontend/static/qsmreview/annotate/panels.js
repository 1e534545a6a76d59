// The workspace's panels: one NiiVue viewer per sequence (T2* magnitude, FLAIR, T1 WM-nulled,
// T1 CSF-nulled, all on the T2* grid), linked both ways for crosshair and zoom/pan, with three
// layouts: side by side, one large with the others as thumbnails, and the multiplanar view of
// one panel. Window/level stays per sequence (never synchronised: the sequences' intensities
// have nothing in common). No 3-D render tile: it costs ~350 ms a frame in software rendering
// and a pen move 2.5 s with it on screen.
import { SLICE_TYPES, createViewer, fetchSeriesImage } from "../viewer.js";

/** Window presets, as percentiles of a volume's non-zero voxels (full: its min and max). "auto"
 * is NiiVue's own robust range, computed from the data while decoding with these percentiles
 * (before the first upload: a window set after loading costs a whole re-upload and colour-map
 * pass, ~1 s in software rendering). */
const AUTO_PERCENTILE = 0.01;
export const WINDOW_PRESETS = {
  auto: { label: "auto", title: "robust: 1st to 99th percentile", range: [AUTO_PERCENTILE, 1 - AUTO_PERCENTILE] },
  narrow: { label: "narrow", title: "more contrast: 10th to 97th percentile", range: [0.1, 0.97] },
  wide: { label: "wide", title: "the full range", range: null },
};
const PRESET_ORDER = ["auto", "narrow", "wide"];

const VIEWER_OPTIONS = {
  isColorbar: false,
  dragAndDropEnabled: false,
  maxDrawUndoBitmaps: 2, // NiiVue's own undo is not used (the editor keeps diffs); keep it small
  crosshairColor: [0.2, 0.8, 1.0, 0.7], // differs from the red pen
  crosshairWidth: 0.4, // in voxels: thin, not hiding the voxel being drawn
  crosshairGap: 6,
  textHeight: 0.04,
};

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// --- partial uploads of the drawing texture ---------------------------------------------------
// NiiVue's refreshDrawing re-uploads the whole drawing (13 MB at 384 x 384 x 90) and scans it;
// an edit touches a few slices. These write only those voxels into NiiVue's drawing texture
// (its TEXTURE_3D on unit TEXTURE7, R8, laid out like drawBitmap: x fastest, then y, then z).
// They return false when they cannot (no 3-D drawing texture): the caller then falls back on
// NiiVue's own refreshDrawing.

const TEXTURE7 = 0x84c7; // NiiVue's TEXTURE_CONSTANTS.TEXTURE7_DRAW

function drawingTarget(nv) {
  if (!nv.gl || !nv.drawTexture || !nv.drawBitmap || nv.opts.is2DSliceShader || !nv.back?.dims) return null;
  const [nx, ny, nz] = nv.back.dims.slice(1, 4);
  if (nv.drawBitmap.length !== nx * ny * nz) return null;
  const gl = nv.gl;
  gl.activeTexture(TEXTURE7);
  gl.bindTexture(gl.TEXTURE_3D, nv.drawTexture);
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1); // NiiVue's own setting too
  return { gl, nx, ny, nz };
}

/** Upload the axial slices z0..z1 (inclusive) of ``nv``'s drawBitmap. */
export function uploadDrawingSlab(nv, z0, z1) {
  const t = drawingTarget(nv);
  if (!t) return false;
  const { gl, nx, ny, nz } = t;
  z0 = Math.max(0, z0);
  z1 = Math.min(nz - 1, z1);
  if (z1 < z0) return true;
  const data = nv.drawBitmap.subarray(z0 * nx * ny, (z1 + 1) * nx * ny);
  gl.texSubImage3D(gl.TEXTURE_3D, 0, 0, 0, z0, nx, ny, z1 - z0 + 1, gl.RED, gl.UNSIGNED_BYTE, data);
  return true;
}

/** Upload one slice of ``nv``'s drawBitmap: ``axis`` 0 axial (z = index), 1 coronal (y), 2 sagittal (x). */
export function uploadDrawingSlice(nv, axis, index) {
  if (axis === 0) return uploadDrawingSlab(nv, index, index);
  const t = drawingTarget(nv);
  if (!t) return false;
  const { gl, nx, ny, nz } = t;
  const bitmap = nv.drawBitmap;
  const nxy = nx * ny;
  if (axis === 1) {
    if (index < 0 || index >= ny) return true;
    const data = new Uint8Array(nx * nz); // rows of x, one per z
    for (let z = 0; z < nz; z++) data.set(bitmap.subarray(z * nxy + index * nx, z * nxy + index * nx + nx), z * nx);
    gl.texSubImage3D(gl.TEXTURE_3D, 0, 0, index, 0, nx, 1, nz, gl.RED, gl.UNSIGNED_BYTE, data);
    return true;
  }
  if (axis === 2) {
    if (index < 0 || index >= nx) return true;
    const data = new Uint8Array(ny * nz); // one voxel per (y, z)
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) data[z * ny + y] = bitmap[z * nxy + y * nx + index];
    gl.texSubImage3D(gl.TEXTURE_3D, 0, index, 0, 0, 1, ny, nz, gl.RED, gl.UNSIGNED_BYTE, data);
    return true;
  }
  return false;
}

export class Panel {
  constructor(index, spec, figure, canvas) {
    Object.assign(this, { index, spec, figure, canvas });
    this.viewer = null;
    this.preset = "auto";
    this._values = null; // intensities in bitmap order (region grow), computed on first use
  }

  get nv() {
    return this.viewer.nv;
  }

  /** This panel's intensities in NiiVue's bitmap (RAS) order, calibrated. */
  values() {
    if (!this._values) {
      const vol = this.viewer.volume;
      const raw = vol.img2RAS();
      const slope = Number.isFinite(vol.hdr.scl_slope) && vol.hdr.scl_slope !== 0 ? vol.hdr.scl_slope : 1;
      const inter = Number.isFinite(vol.hdr.scl_inter) ? vol.hdr.scl_inter : 0;
      this._values = slope === 1 && inter === 0 ? raw : Float32Array.from(raw, (v) => v * slope + inter);
    }
    return this._values;
  }

  /** The robust range of this panel's intensities (for the region grow's tolerance). */
  robustSpan() {
    const [lo, hi] = this.viewer.percentileWindow(0.01, 0.99);
    return hi - lo;
  }

  applyPreset(name) {
    const preset = WINDOW_PRESETS[name] || WINDOW_PRESETS.auto;
    let range;
    if (name === "auto") range = this.viewer.rangeOf("robust");
    else range = preset.range ? this.viewer.percentileWindow(...preset.range) : this.viewer.rangeOf("full");
    this.viewer.setWindow(...range);
    this.markPreset(name);
  }

  markPreset(name) {
    this.preset = name;
    for (const b of this.figure.querySelectorAll("[data-preset]")) b.setAttribute("aria-pressed", String(b.dataset.preset === name));
    this.figure.dataset.preset = name;
  }

  cyclePreset() {
    this.applyPreset(PRESET_ORDER[(PRESET_ORDER.indexOf(this.preset) + 1) % PRESET_ORDER.length]);
  }
}

export class PanelSet {
  /**
   * @param {HTMLElement} container - where the panels go
   * @param {object[]} specs - the assignment's panels [{id, kind, label, title, url, name}]
   * @param {object} options - {niivueUrl, onSelect(panel)}
   */
  constructor(container, specs, { niivueUrl, onSelect = () => {} }) {
    Object.assign(this, { container, specs, niivueUrl, onSelect });
    this.panels = [];
    this.layout = "side";
    this.plane = "axial";
    this.selected = 0;
  }

  /** Build the viewers and load every panel's volume (in parallel); resolves when all are shown. */
  async load() {
    this.container.textContent = "";
    this.panels = this.specs.map((spec, index) => {
      const figure = el("figure", { class: "panel", "data-panel": String(index), "data-kind": spec.kind || "" });
      const caption = el("figcaption");
      const title = el("button", { type: "button", class: "panel-title", title: "Make this panel the large one" }, spec.title || spec.label || spec.kind);
      title.addEventListener("click", () => this.select(index));
      caption.append(title);
      const presets = el("span", { class: "presets" });
      for (const name of PRESET_ORDER) {
        const b = el("button", { type: "button", "data-preset": name, title: WINDOW_PRESETS[name].title }, WINDOW_PRESETS[name].label);
        b.addEventListener("click", () => this.panels[index].applyPreset(name));
        presets.append(b);
      }
      caption.append(presets);
      const box = el("div", { class: "panel-canvas" });
      const canvas = el("canvas", { "aria-label": `${spec.title || spec.kind}: slices of the case` });
      box.append(canvas);
      figure.append(caption, box);
      // A click on a thumbnail makes it the large panel (and does not move the crosshair).
      box.addEventListener(
        "mousedown",
        (event) => {
          if (this.layout === "hero" && index !== this.selected) {
            event.preventDefault();
            event.stopPropagation();
            this.select(index);
          }
        },
        { capture: true },
      );
      this.container.append(figure);
      return new Panel(index, spec, figure, canvas);
    });
    this.applyLayout();
    // The four downloads and decodes start at once (network and parsing overlap the viewers'
    // setup); each volume goes to its viewer as soon as both are ready. The GPU work per volume
    // is one upload and one colour-map pass (the window is fixed from the data before it, no 3-D
    // gradient: see createViewer), queued without waiting for frames in between: the page waits
    // for pixels once, at the end.
    const images = this.panels.map((panel) =>
      fetchSeriesImage(
        {
          url: panel.spec.url,
          name: panel.spec.name || "volume.nii",
          kind: panel.spec.kind,
          niivueOptions: { percentileFrac: AUTO_PERCENTILE, ignoreZeroVoxels: true, trustCalMinMax: false },
        },
        { niivueUrl: this.niivueUrl },
      ),
    );
    images.forEach((p) => p.catch(() => {})); // awaited below; no unhandled rejection meanwhile
    for (const panel of this.panels) {
      panel.viewer = await createViewer(panel.canvas, {
        niivueUrl: this.niivueUrl,
        sliceType: this.plane,
        niivueOptions: VIEWER_OPTIONS,
      });
    }
    await Promise.all(
      this.panels.map(async (panel, i) => {
        panel.viewer.showImage(await images[i], { ...panel.spec, name: panel.spec.name || "volume.nii" });
        panel.markPreset("auto"); // NiiVue's robust range from the options above
      }),
    );
    const all = this.panels.map((p) => p.nv);
    for (const nv of all) nv.broadcastTo(all.filter((o) => o !== nv), { crosshair: true, zoomPan: true });
    this.applyLayout();
  }

  get viewers() {
    return this.panels.map((p) => p.viewer);
  }

  /** The panel whose canvas is ``canvas`` (or contains the event target). */
  panelOf(target) {
    return this.panels.find((p) => p.canvas === target || p.figure.contains(target)) || null;
  }

  setLayout(layout) {
    this.layout = ["side", "hero", "mpr"].includes(layout) ? layout : "side";
    this.applyLayout();
  }

  setPlane(plane) {
    this.plane = SLICE_TYPES[plane] !== undefined && plane !== "multiplanar" ? plane : "axial";
    this.applyLayout();
  }

  select(index) {
    this.selected = (index + this.panels.length) % this.panels.length;
    this.applyLayout();
    this.onSelect(this.panels[this.selected]);
  }

  applyLayout() {
    this.container.dataset.layout = this.layout;
    for (const panel of this.panels) {
      const isSelected = panel.index === this.selected;
      panel.figure.classList.toggle("selected", isSelected);
      panel.figure.classList.toggle("thumb", this.layout === "hero" && !isSelected);
      panel.figure.hidden = this.layout === "mpr" && !isSelected;
      if (!panel.viewer) continue;
      panel.viewer.setSliceType(this.layout === "mpr" && isSelected ? "multiplanar" : this.plane);
    }
    // The boxes changed size: let every canvas fit its box (after the browser laid them out).
    requestAnimationFrame(() => {
      for (const panel of this.panels) if (panel.viewer && !panel.figure.hidden) panel.viewer.resize();
    });
  }

  /** Move every panel's crosshair to world point ``mm``. */
  setCrosshairMm(mm) {
    for (const panel of this.panels) {
      const nv = panel.nv;
      nv.scene.crosshairPos = nv.mm2frac(mm);
      nv.drawScene();
      nv.createOnLocationChange();
    }
  }

  /** The crosshair's world position (mm), from the first panel. */
  crosshairMm() {
    const nv = this.panels[0].nv;
    return Array.from(nv.frac2mm(nv.scene.crosshairPos)).slice(0, 3);
  }

  /** Move the crosshair one voxel along the current plane's normal (slice up/down). */
  moveSlice(step) {
    const nv = this.panels[this.selected].nv;
    const axis = { axial: 2, coronal: 1, sagittal: 0 }[this.plane];
    const d = [0, 0, 0];
    d[axis] = step;
    nv.moveCrosshairInVox(...d);
    this.setCrosshairMm(Array.from(nv.frac2mm(nv.scene.crosshairPos)).slice(0, 3));
  }

  // --- drawing on every panel ---------------------------------------------------------------

  /** Every panel gets an empty drawing (or ``bitmap``), opacity ``opacity``. */
  initDrawing(bitmap, opacity) {
    for (const panel of this.panels) {
      const nv = panel.nv;
      if (!nv.drawBitmap) nv.createEmptyDrawing(); // uploads the empty drawing
      if (bitmap) {
        nv.drawBitmap.set(bitmap);
        nv.refreshDrawing(false);
      }
      nv.setDrawOpacity(opacity); // and draws
    }
  }

  /** Write a change into every panel's drawBitmap except ``source``'s, and show it. */
  applyChange(change, source = null) {
    const { indices, after } = change;
    if (!indices.length) return;
    // The axial slabs the change touches: only they are uploaded (a stroke in one slice: 147 KB
    // instead of the whole 13 MB drawing).
    const [nx, ny] = this.panels[0].nv.back.dims.slice(1, 3);
    const nxy = nx * ny;
    let z0 = Infinity;
    let z1 = -1;
    for (let k = 0; k < indices.length; k++) {
      const z = (indices[k] / nxy) | 0;
      if (z < z0) z0 = z;
      if (z > z1) z1 = z;
    }
    for (const panel of this.panels) {
      if (panel === source) continue;
      const bitmap = panel.nv.drawBitmap;
      for (let k = 0; k < indices.length; k++) bitmap[indices[k]] = after[k];
      if (!uploadDrawingSlab(panel.nv, z0, z1)) panel.nv.refreshDrawing(false);
      this.requestDraw(panel);
    }
  }

  /** Copy a whole mask into every panel (after a revision is loaded). */
  setBitmap(mask) {
    for (const panel of this.panels) {
      panel.nv.drawBitmap.set(mask);
      panel.nv.refreshDrawing(false);
      this.requestDraw(panel);
    }
  }

  /** Draw a panel at the next animation frame (several requests in one frame: one draw). */
  requestDraw(panel) {
    if (panel._drawFrame) return;
    panel._drawFrame = requestAnimationFrame(() => {
      panel._drawFrame = 0;
      panel.nv.drawScene();
    });
  }

  /**
   * While the pen is down on ``panel``:
   * - it does not redraw the other panels: NiiVue syncs its linked viewers on every drawScene of
   *   the focused canvas, so each pen move would render all four panels (the stroke reaches the
   *   others at mouse-up, through applyChange, and so does the crosshair);
   * - it renders once per animation frame: NiiVue draws the scene four times per mouse move
   *   (and re-uploads the whole 13 MB drawing texture once); here its drawScene and
   *   refreshDrawing only mark what is due, and one frame callback uploads the drawing slices
   *   the pen touched (NiiVue's pen paints in the plane of the tile it started on) and draws.
   * Called from a capture-phase mousedown listener, i.e. before NiiVue's own handler.
   */
  beginStroke(panel) {
    if (panel._stroke) return;
    const nv = panel.nv;
    const stroke = { links: nv.otherNV, slices: new Set(), full: false, frame: 0 };
    panel._stroke = stroke;
    nv.otherNV = null;
    const proto = Object.getPrototypeOf(nv);
    stroke.flush = () => {
      if (stroke.frame) cancelAnimationFrame(stroke.frame);
      stroke.frame = 0;
      this._uploadStroke(nv, stroke);
      proto.drawScene.call(nv);
    };
    const schedule = () => {
      if (!stroke.frame) stroke.frame = requestAnimationFrame(stroke.flush);
    };
    // Own properties shadow NiiVue's methods for this instance only; endStroke deletes them.
    nv.drawScene = schedule;
    nv.refreshDrawing = (isForceRedraw = true, useClickToSegmentBitmap = false) => {
      const axis = nv.drawPenAxCorSag;
      const at = nv.drawPenLocation;
      if (useClickToSegmentBitmap || nv.opts.smoothDrawing > 0 || !(axis >= 0 && axis <= 2) || !Number.isFinite(at?.[0])) {
        stroke.full = true;
      } else {
        stroke.slices.add(`${axis}:${at[2 - axis]}`);
      }
      if (isForceRedraw) schedule();
    };
  }

  endStroke(panel) {
    const stroke = panel._stroke;
    if (!stroke) return;
    delete panel._stroke;
    const nv = panel.nv;
    delete nv.drawScene; // NiiVue's own methods again
    delete nv.refreshDrawing;
    nv.otherNV = stroke.links;
    if (stroke.frame || stroke.full || stroke.slices.size) stroke.flush();
    // The other panels follow the crosshair the pen moved (drawn with the stroke's change).
    const mm = nv.frac2mm(nv.scene.crosshairPos);
    for (const other of this.panels) {
      if (other === panel) continue;
      other.nv.scene.crosshairPos = other.nv.mm2frac(mm);
      this.requestDraw(other);
    }
  }

  /** Upload what a stroke changed in ``nv``'s drawBitmap (slices, or all of it). */
  _uploadStroke(nv, stroke) {
    if (stroke.full) {
      Object.getPrototypeOf(nv).refreshDrawing.call(nv, false);
    } else {
      for (const key of stroke.slices) {
        const [axis, index] = key.split(":").map(Number);
        if (!uploadDrawingSlice(nv, axis, index)) {
          Object.getPrototypeOf(nv).refreshDrawing.call(nv, false);
          break;
        }
      }
    }
    stroke.full = false;
    stroke.slices.clear();
  }

  setOpacity(opacity) {
    for (const panel of this.panels) panel.nv.setDrawOpacity(opacity);
  }

  /**
   * Configure NiiVue's pen on every panel: ``mode`` "off" (navigate, or a tool the page
   * handles itself on click), "pen", "fill" (filled outline: the stroke is closed into a
   * polygon and filled in that slice), "eraser". ``size`` must be odd (NiiVue paints a square
   * of 2*floor(n/2)+1 voxels: 2 draws like 3).
   */
  setPen(mode, size) {
    for (const panel of this.panels) {
      const nv = panel.nv;
      if (mode === "off") {
        nv.setDrawingEnabled(false);
        continue;
      }
      nv.opts.penSize = size;
      nv.setDrawingEnabled(true);
      nv.setPenValue(mode === "eraser" ? 0 : 1, mode === "fill");
    }
  }
}
