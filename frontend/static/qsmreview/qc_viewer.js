// The QC viewer (consensus/qc_viewer.html): the run's QSM (display copy, ppm, diverging map centred
// on 0) with the consensus lesions, the reference ROIs and the proposed vessels overlaid, the
// lesion list (click: the crosshair moves to the lesion), and for the study's admins the tools:
// draw over voxels (NiiVue's drawing layer, on the QSM's grid = the T2* grid) and remove them from
// the selected lesion or the reference ROIs, or add them to the lesion's reference ROI; remove the
// proposed vessel voxels of a lesion; exclude or restore a lesion. Every tool calls the consensus
// API (a decision with a reason; a new measurement set), then the label maps and the list are
// loaded again for the new set.
//
// The drawn mask is sent as `saveImage({isSaveDrawing: true})` bytes: NiiVue maps its drawing
// (RAS-permuted voxel order) back to the file's voxel order and writes the QSM display copy's
// header, which has the series' own qform and sform (the server checks shape and affine). Never
// nv.drawBitmap written under a header by hand (docs: /work/shared/browser.md, bitmap order).
//
// The root element gets data-ready="true" once everything is drawn, data-set="<n>" for the
// measurement set shown, data-busy while an action runs.
import { QSM_DEFAULT_HALF_WINDOW_PPM, createViewer, formatValue } from "./viewer.js";

const root = document.querySelector('[data-testid="qc-viewer"]');
const config = JSON.parse(document.getElementById("qc-config").textContent);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
const $ = (testid) => root.querySelector(`[data-testid="${testid}"]`);

const QSM_PRESETS_PPM = [0.05, 0.1, QSM_DEFAULT_HALF_WINDOW_PPM, 0.3];
/** Overlay layers in NiiVue's volume order after the QSM (index 0). Label ids >= 1 all take the
 * map's top colour (cal 0.5..1); 0 is transparent. */
const LAYERS = [
  { key: "lesions", colormap: "red", url: () => withSet(config.urls.lesion_labels) },
  { key: "reference", colormap: "green", url: () => withSet(config.urls.reference_labels) },
  { key: "vessels", colormap: "blue", url: () => config.urls.vessels, optional: true },
];

const state = { viewer: null, nv: null, second: null, secondSeries: null, set: null, lesions: [], selected: null, strokes: 0, halfWindow: QSM_DEFAULT_HALF_WINDOW_PPM };

function withSet(url) {
  return state.set ? `${url}?set=${state.set}` : url;
}

function showError(message) {
  const el = $("viewer-error");
  el.textContent = message;
  el.hidden = !message;
}

function showStatus(message) {
  const el = $("status");
  el.textContent = message;
  el.hidden = !message;
}

function button(text, onClick) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = text;
  el.addEventListener("click", onClick);
  return el;
}

async function api(url, { method = "GET", body } = {}) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...(body ? { "Content-Type": "application/json", "X-CSRFToken": csrfToken } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error(data?.detail || `${response.status} ${response.statusText}`);
  return data;
}

/** The QC list of the current set: lesions with flags, vessel counts and centres. */
async function loadList() {
  const qc = await api(config.urls.qc);
  state.set = qc.set;
  state.lesions = qc.lesions;
  root.dataset.set = String(qc.set);
  $("set-number").textContent = String(qc.set);
  renderList();
}

function fmt(value, digits = 4) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function renderList() {
  const body = root.querySelector('[data-testid="qc-lesions"] tbody');
  body.replaceChildren();
  for (const lesion of state.lesions) {
    const tr = document.createElement("tr");
    tr.dataset.lesion = String(lesion.lesion);
    tr.classList.toggle("selected", lesion.lesion === state.selected);
    tr.classList.toggle("excluded", lesion.excluded);
    const rel = lesion.portions.map((p) => `${p.portion}: ${fmt(p.relative_susceptibility_ppm)}`).join("; ");
    const refs = lesion.portions.map((p) => `${p.roi}: ${p.reference_n_voxels ?? 0}${p.reference_flag ? ` (${p.reference_flag})` : ""}`).join("; ");
    const cut = lesion.qsm_mask_cut_fraction ? `${Math.round(100 * lesion.qsm_mask_cut_fraction)} %` : "–";
    const vessels = lesion.vessel_voxels_lesion === null ? "–" : `${lesion.vessel_voxels_lesion} / ${lesion.vessel_voxels_reference}`;
    const cells = [lesion.lesion, lesion.lesion_type, lesion.n_voxels, rel, refs, cut, vessels,
      lesion.excluded ? `excluded: ${lesion.exclusion_reason}` : "included"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = String(text);
      if (i === 2) td.dataset.testid = `voxels-${lesion.lesion}`;
      if (i === 6) td.dataset.testid = `vessels-${lesion.lesion}`;
      if (i === 7) td.dataset.testid = `state-${lesion.lesion}`;
      tr.append(td);
    });
    tr.addEventListener("click", () => select(lesion.lesion, { jump: true }));
    body.append(tr);
  }
}

/** Put both panels' crosshair on a scanner position (mm). */
function moveCrosshair(mm) {
  const nv = state.nv;
  // Scanner mm through the volume's true affine (isForceSliceMM): without it NiiVue maps mm
  // through the oblique-free "ortho" matrix and lands beside the voxel on an oblique grid.
  nv.scene.crosshairPos = nv.mm2frac(mm, 0, true);
  nv.createOnLocationChange();
  nv.drawScene();
  if (state.second?.nv.volumes.length) {
    // Set programmatically, so NiiVue's broadcast (mouse events only) does not carry it over.
    state.second.nv.scene.crosshairPos = state.second.nv.mm2frac(mm, 0, true);
    state.second.nv.drawScene();
  }
}

/** Select a lesion (tools act on it) and, with jump, move the crosshair to its centre voxel. */
function select(id, { jump = false } = {}) {
  state.selected = id;
  const lesion = state.lesions.find((l) => l.lesion === id);
  renderList();
  if (jump && lesion?.centre_mm) {
    moveCrosshair(lesion.centre_mm);
    root.dataset.crosshairLesion = String(id);
  }
  if (!config.can_manage) return;
  $("selected").textContent = lesion ? `Lesion ${id} (${lesion.lesion_type}, ${lesion.n_voxels} voxels)` : "Pick a lesion in the list.";
  const roi = $("roi");
  roi.replaceChildren();
  for (const p of lesion?.portions || []) {
    const option = document.createElement("option");
    option.value = String(p.roi);
    option.textContent = `${p.roi} (${p.portion})`;
    roi.append(option);
  }
  $("exclude").hidden = !lesion || lesion.excluded;
  $("restore").hidden = !lesion || !lesion.excluded;
}

/** Load (or load again, for a new set) the QSM and the three overlays in one step. */
async function loadVolumes() {
  const nv = state.nv;
  if (nv.drawBitmap) nv.closeDrawing(); // a drawing stops working when the background changes
  const opacity = Number($("overlay-opacity").value);
  const list = [
    { url: config.qsm.url, name: config.qsm.name, colormap: "qsm_rdbu", cal_min: -state.halfWindow, cal_max: state.halfWindow },
  ];
  for (const layer of LAYERS) {
    if (layer.optional && !config.vessels) continue;
    list.push({
      url: layer.url(), name: `${layer.key}-${state.set}.nii.gz`, colormap: layer.colormap,
      cal_min: 0.5, cal_max: 1, opacity: shown(layer.key) ? opacity : 0, colorbarVisible: false,
    });
  }
  const t0 = performance.now();
  // One step for all four (adding layers one by one re-processes the earlier ones), window and
  // nearest interpolation set in the options: a later setWindow would colour-map all four again.
  await nv.loadVolumes(list);
  const t1 = performance.now();
  state.viewer.base = { ...config.qsm };
  state.strokes = 0;
  if (config.can_manage) {
    nv.createEmptyDrawing();
    applyTool();
  }
  root.dataset.volumes = String(nv.volumes.length);
  root.dataset.timings = JSON.stringify({ load_volumes_ms: Math.round(t1 - t0), drawing_ms: Math.round(performance.now() - t1) });
}

function shown(key) {
  const box = $(`show-${key}`);
  return box && box.checked && !box.disabled;
}

function layerIndex(key) {
  let index = 1;
  for (const layer of LAYERS) {
    if (layer.optional && !config.vessels) continue;
    if (layer.key === key) return index;
    index++;
  }
  return -1;
}

function applyOpacity() {
  const opacity = Number($("overlay-opacity").value);
  for (const layer of LAYERS) {
    const i = layerIndex(layer.key);
    if (i > 0 && i < state.nv.volumes.length) state.nv.setOpacity(i, shown(layer.key) ? opacity : 0);
  }
}

// --- tools (admins) -------------------------------------------------------------------------

function applyTool() {
  const nv = state.nv;
  const tool = $("tool").value;
  nv.opts.penSize = Number($("pen-size").value);
  if (tool === "none") {
    nv.setDrawingEnabled(false);
  } else {
    nv.setDrawingEnabled(true);
    nv.setPenValue(tool === "pen" ? 1 : 0, false);
  }
  root.dataset.tool = tool;
}

function drawnCount() {
  const bitmap = state.nv.drawBitmap;
  if (!bitmap) return 0;
  let n = 0;
  for (let i = 0; i < bitmap.length; i++) if (bitmap[i]) n++;
  return n;
}

async function gzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function reason() {
  const text = $("edit-reason").value.trim();
  if (!text) throw new Error("give a reason first (it is kept in the QC history)");
  return text;
}

/** Run one action (an API call), then show the new set. */
async function act(what, call) {
  showError("");
  root.dataset.busy = "true";
  try {
    await call();
    await loadList();
    await loadVolumes();
    if (state.secondSeries) await loadSecond(state.secondSeries);
    if (state.selected !== null) select(state.selected);
    showStatus(`${what}: saved as measurement set ${state.set}.`);
  } catch (err) {
    showError(`${what}: ${err.message || err}`);
  } finally {
    delete root.dataset.busy;
  }
}

async function applyEdit() {
  await act("Edit", async () => {
    const text = reason();
    const [operation, target] = $("operation").value.split("-");
    if (target === "lesion" && state.selected === null) throw new Error("pick the lesion first");
    if (!drawnCount()) throw new Error("draw over the voxels first");
    const nifti = await state.nv.saveImage({ filename: "", isSaveDrawing: true });
    if (!(nifti instanceof Uint8Array)) throw new Error("NiiVue returned no mask bytes");
    const body = { operation, target, reason: text, mask: base64(await gzip(nifti)) };
    if (target === "lesion") body.lesion = state.selected;
    if (operation === "add") {
      if (!$("roi").value) throw new Error("pick the lesion whose reference ROI grows");
      body.roi = Number($("roi").value);
    }
    await api(config.urls.voxel_edits, { method: "POST", body });
  });
}

async function applyVessels(target) {
  await act("Proposed vessels", async () => {
    if (state.selected === null) throw new Error("pick the lesion first");
    await api(config.urls.vessel_applications, { method: "POST", body: { lesion: state.selected, target, reason: reason() } });
  });
}

async function exclude() {
  await act("Exclude", async () => {
    if (state.selected === null) throw new Error("pick the lesion first");
    await api(config.urls.exclusions, {
      method: "POST",
      body: { lesion: state.selected, reason_code: $("exclusion-reason").value, reason: reason() },
    });
  });
}

async function restore() {
  await act("Restore", async () => {
    const lesion = state.lesions.find((l) => l.lesion === state.selected);
    if (!lesion?.exclusion_decision) throw new Error("this lesion is not excluded");
    await api(config.urls.revert.replace("{id}", String(lesion.exclusion_decision)), { method: "POST", body: { reason: reason() } });
  });
}

function clearDrawing() {
  const nv = state.nv;
  nv.closeDrawing();
  nv.createEmptyDrawing();
  state.strokes = 0;
  applyTool();
}

function undo() {
  // NiiVue's undo ring wraps past its oldest snapshot: undo only strokes made since the last load.
  if (state.strokes <= 0) return;
  state.nv.drawUndo();
  state.strokes--;
}

function wireTools() {
  const select_ = $("exclusion-reason");
  for (const { value, label } of config.exclusion_reasons) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select_.append(option);
  }
  $("tool").addEventListener("change", applyTool);
  $("pen-size").addEventListener("change", applyTool);
  $("apply-edit").addEventListener("click", applyEdit);
  $("clear-drawing").addEventListener("click", clearDrawing);
  $("undo").addEventListener("click", undo);
  $("apply-vessels-lesion").addEventListener("click", () => applyVessels("lesion"));
  $("apply-vessels-reference").addEventListener("click", () => applyVessels("reference"));
  $("exclude").addEventListener("click", exclude);
  $("restore").addEventListener("click", restore);
  $("apply-vessels-lesion").disabled = $("apply-vessels-reference").disabled = !config.vessels;
  state.nv.addEventListener("drawingChanged", (event) => {
    if (event.detail?.action === "draw") state.strokes++;
    root.dataset.drawn = String(drawnCount());
  });
}

function wireKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea")) return;
    const key = event.key.toLowerCase();
    if (config.can_manage && (event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tools = { d: "pen", e: "eraser", n: "none" };
    if (config.can_manage && tools[key]) {
      $("tool").value = tools[key];
      applyTool();
    }
    const toggles = { l: "lesions", r: "reference", v: "vessels" };
    if (toggles[key]) {
      const box = $(`show-${toggles[key]}`);
      if (!box.disabled) box.checked = !box.checked;
      applyOpacity();
    }
  });
}

// --- the second panel: another series of the session, crosshair linked in mm ---------------------

/** Show ``series`` (or nothing) in the second panel with the lesions over it. */
async function loadSecond(series) {
  const panel = $("second-panel");
  state.secondSeries = series;
  delete root.dataset.second;
  if (!series) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  if (!state.second) {
    state.second = await createViewer(document.getElementById("qc-canvas-2"), {
      niivueUrl: root.dataset.niivue,
      sliceType: "axial",
      crosshairColor: [1, 1, 0, 1],
      niivueOptions: { crosshairWidthUnit: "percent", crosshairWidth: 0.5, isNearestInterpolation: true },
    });
    // Only the canvas under the mouse broadcasts: link each to the other.
    state.nv.broadcastTo([state.second.nv], { crosshair: true, zoomPan: true });
    state.second.nv.broadcastTo([state.nv], { crosshair: true, zoomPan: true });
  }
  const nv2 = state.second.nv;
  await nv2.loadVolumes([
    { url: series.url, name: series.name, colormap: "gray" },
    { url: withSet(config.urls.lesion_labels), name: `lesions-${state.set}.nii.gz`, colormap: "red", cal_min: 0.5, cal_max: 1, opacity: 0.4, colorbarVisible: false },
  ]);
  nv2.scene.crosshairPos = nv2.mm2frac(state.nv.frac2mm(state.nv.scene.crosshairPos, 0, true), 0, true);
  nv2.drawScene();
  root.dataset.second = String(series.id);
}

/** Follow the address's fragment (links from the statistics dashboard): ``#lesion-N`` selects
 * consensus lesion N, ``#mm=x,y,z`` puts the crosshair on that scanner position (a rater's own
 * lesion). Returns whether it named something. */
function followHash() {
  const hash = decodeURIComponent(window.location.hash || "");
  const lesion = /^#lesion-(\d+)$/.exec(hash);
  if (lesion && state.lesions.some((l) => l.lesion === Number(lesion[1]))) {
    select(Number(lesion[1]), { jump: true });
    return true;
  }
  const mm = /^#mm=(-?[\d.]+),(-?[\d.]+),(-?[\d.]+)$/.exec(hash);
  if (mm) {
    const point = mm.slice(1, 4).map(Number);
    moveCrosshair(point);
    root.dataset.crosshairMm = point.join(",");
    return true;
  }
  return false;
}

async function main() {
  const started = performance.now();
  state.viewer = await createViewer(document.getElementById("qc-canvas"), {
    niivueUrl: root.dataset.niivue,
    sliceType: "axial",
    crosshairColor: [1, 1, 0, 1],
    // A thin crosshair (0.5 % of the field of view) rather than NiiVue's one voxel, which would
    // hide the voxel under it, the one being edited.
    niivueOptions: { crosshairWidthUnit: "percent", crosshairWidth: 0.5, isNearestInterpolation: true },
  });
  state.nv = state.viewer.nv;
  window.qcViewer = state; // for the console and tests
  state.viewer.onLocation(({ mm, vox, value }) => {
    $("value").textContent = formatValue(value, "ppm");
    $("where").textContent = `voxel ${vox.map((v) => Math.round(v)).join(", ")} · ${mm.map((v) => v.toFixed(1)).join(", ")} mm`;
  });
  for (const half of QSM_PRESETS_PPM) {
    $("presets").append(button(`±${half} ppm`, () => {
      state.halfWindow = half;
      state.viewer.setSymmetricWindow(half);
    }));
  }
  $("slice-type").addEventListener("change", (e) => state.viewer.setSliceType(e.target.value));
  for (const key of ["lesions", "reference", "vessels"]) $(`show-${key}`).addEventListener("change", applyOpacity);
  $("overlay-opacity").addEventListener("input", applyOpacity);
  await loadList();
  await loadVolumes();
  const secondById = new Map((config.second || []).map((series) => [String(series.id), series]));
  $("second-series").addEventListener("change", (e) => {
    loadSecond(secondById.get(e.target.value) || null).catch((err) => showError(`Second panel: ${err.message || err}`));
  });
  if (config.can_manage) wireTools();
  wireKeys();
  if (!followHash() && state.lesions.length) select(state.lesions[0].lesion, { jump: true });
  window.addEventListener("hashchange", followHash);
  root.dataset.loadMs = String(Math.round(performance.now() - started));
  root.dataset.ready = "true";
}

main().catch((err) => {
  console.error(err);
  showError(`The QC viewer could not load: ${err?.message || err}`);
  root.dataset.ready = "error";
});
