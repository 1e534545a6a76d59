// The rater workspace (annotations/workspace.html): the case's panels in NiiVue, the drawing
// tools, the lesion list, keyboard shortcuts and the saver (annotate/saving.js).
//
// The root element gets data-ready="1" once every panel shows its volume and the saved mask
// (data-ready="error" when the case cannot be shown), data-tool, data-lesions (the count) and
// data-save-state. `window.qsmWorkspace` exposes the pieces to tests and benchmarks:
//   {viewers, panels, editor, mask, grid, lesions(), saver, getSnapshot(), setCrosshairMm(mm),
//    indexOfMm(mm), setVoxels(indices, value), undo(), redo(), setTool(name), loadMaskBytes(buf)}
import { loadNiivue } from "./viewer.js";
import { CaseEditor, Grid } from "./annotate/editor.js";
import { PanelSet } from "./annotate/panels.js";
import { renderLesionList } from "./annotate/lesion_list.js";

const root = document.querySelector('[data-testid="workspace"]');
const config = JSON.parse(document.getElementById("workspace-config").textContent);
const $ = (testid) => root.querySelector(`[data-testid="${testid}"]`);
const apiBase = config.api_root.replace(/\/$/, "");
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";

const TOOLS = ["navigate", "pen", "fill", "eraser", "erase-lesion", "grow"];
const PEN_MODES = { pen: "pen", fill: "fill", eraser: "eraser" };
const PEN_SIZES = [1, 3, 5, 7];

const SAVE_STATES = {
  loading: "loading…",
  saved: "saved",
  dirty: "unsaved changes",
  saving: "saving…",
  retrying: "unsaved changes, retrying",
  offline: "offline: unsaved changes kept in this browser",
  conflict: "conflict: saved in another tab too",
  locked: "submitted (read-only)",
  error: "not saved",
  readonly: "read-only",
};

const state = {
  tool: "navigate",
  penSize: 3,
  opacity: 0.6,
  lastOpacity: 0.6,
  readOnly: true,
  current: null, // the lesion number last jumped to or edited
  panels: null,
  editor: null,
  saver: null,
  history: null,
};

function showError(message) {
  const box = $("ws-error");
  box.textContent = message;
  box.hidden = false;
}

function notice(message) {
  const box = $("ws-notice");
  box.textContent = message;
  box.hidden = !message;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = "";
    try {
      detail = (await response.json()).detail || "";
    } catch {
      /* not JSON */
    }
    throw new Error(`${url}: ${response.status} ${detail || response.statusText}`);
  }
  return response.json();
}

function idOf(value) {
  if (value === null || value === undefined) return null;
  return typeof value === "object" ? value.id ?? null : value;
}

function twoFrames() {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}

// --- the mask: loading a revision --------------------------------------------------------------

async function gunzipIfNeeded(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return buffer;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/** Show a NIfTI mask (bytes, .nii or .nii.gz) on every panel; returns the bitmap shown. */
async function loadMaskBytes(buffer, lesions = []) {
  const { NVImage } = await loadNiivue(root.dataset.niivue);
  const image = await NVImage.new(await gunzipIfNeeded(buffer), "mask.nii");
  const first = state.panels.panels[0].nv;
  // loadDrawing checks the shape only (never the affine): the server stored the mask on this
  // grid with the T2* affine, so the voxel order maps back exactly.
  if (!first.loadDrawing(image)) throw new Error("the saved mask does not fit this case's T2* grid");
  const bitmap = first.drawBitmap;
  for (let i = 0; i < bitmap.length; i++) if (bitmap[i] > 1) bitmap[i] = 1;
  state.editor.reset(bitmap, lesions);
  state.panels.setBitmap(state.editor.mask);
  refreshView();
  return state.editor.mask;
}

async function fetchRevision(revisionId) {
  const [revision, mask] = await Promise.all([
    getJson(`${apiBase}/revisions/${revisionId}/`),
    fetch(`${apiBase}/revisions/${revisionId}/mask/`, { credentials: "same-origin" }).then((r) => {
      if (!r.ok) throw new Error(`revision ${revisionId}'s mask: ${r.status}`);
      return r.arrayBuffer();
    }),
  ]);
  return { revision, mask };
}

/** Show a revision (the latest on load; a restored one; the other tab's after a conflict). */
async function loadRevision(revision) {
  const id = idOf(revision);
  const fetched = await fetchRevision(id);
  await loadMaskBytes(fetched.mask, fetched.revision.lesions || []);
}

// --- edits ---------------------------------------------------------------------------------------

const pendingCommits = new Set();

/** Read a panel's drawBitmap back after NiiVue's pen finished (on the next task). */
function scheduleCommit(panel) {
  if (pendingCommits.has(panel)) return;
  pendingCommits.add(panel);
  setTimeout(() => commitPanel(panel), 0);
}

function commitPanel(panel) {
  if (!pendingCommits.delete(panel) || state.readOnly) return;
  state.editor.commitFrom(panel.nv.drawBitmap, panel);
}

function flushCommits() {
  for (const panel of [...pendingCommits]) commitPanel(panel);
}

/** The lesion list and the undo buttons, after an edit or a load. */
function refreshView() {
  renderLesions();
  $("undo").disabled = state.readOnly || !state.editor.history.canUndo;
  $("redo").disabled = state.readOnly || !state.editor.history.canRedo;
}

/** After every edit (pen, filled pen, eraser, erase lesion, grow, undo, redo): tell the saver. */
function edited() {
  refreshView();
  state.saver?.changed();
}

function undo() {
  flushCommits();
  if (!state.readOnly) state.editor.undo();
}

function redo() {
  flushCommits();
  if (!state.readOnly) state.editor.redo();
}

/** A click with the erase-lesion or grow tool (NiiVue's pen is off: the click moved the crosshair). */
function toolClick(panel, detail) {
  const frac = detail?.fracPos;
  if (!frac || frac[0] < 0 || detail.mouseButtonRightDown || detail.mouseButtonCenterDown) return;
  const vox = Array.from(panel.nv.frac2vox(frac)).map((v) => Math.round(v));
  const index = state.editor.grid.index(vox);
  if (index < 0) return;
  if (state.tool === "erase-lesion") {
    const lesion = state.editor.lesions().find((l) => l.voxels.includes(index));
    if (!state.editor.eraseLesionAt(index)) notice("No lesion under the click: click a drawn voxel to erase its lesion.");
    else notice(lesion ? `Lesion #${lesion.number} erased (Ctrl+Z brings it back).` : "");
  } else if (state.tool === "grow") {
    const tolerance = (Number($("grow-tolerance").value) / 100) * panel.robustSpan();
    const radiusMm = Number($("grow-radius").value);
    if (!state.editor.growAt(index, panel.values(), { tolerance, radiusMm })) notice("Nothing to add there.");
    else notice("");
  }
}

// --- tools, view, keys ---------------------------------------------------------------------------

function setTool(tool) {
  if (state.readOnly || !TOOLS.includes(tool)) tool = "navigate";
  state.tool = tool;
  root.dataset.tool = tool;
  state.panels.setPen(PEN_MODES[tool] || "off", state.penSize);
  for (const b of root.querySelectorAll("[data-tool]")) {
    if (b.tagName === "BUTTON") b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
  }
}

function setPenSize(size) {
  // NiiVue paints a square of 2*floor(n/2)+1 voxels: even sizes would draw like the next odd one.
  state.penSize = PEN_SIZES.includes(size) ? size : 3;
  $("pen-size").value = String(state.penSize);
  setTool(state.tool);
}

function stepPenSize(step) {
  const i = PEN_SIZES.indexOf(state.penSize);
  setPenSize(PEN_SIZES[Math.max(0, Math.min(PEN_SIZES.length - 1, i + step))]);
}

function setOpacity(value) {
  state.opacity = Math.max(0, Math.min(1, value));
  if (state.opacity > 0) state.lastOpacity = state.opacity;
  $("opacity").value = String(state.opacity);
  state.panels.setOpacity(state.opacity);
}

function setLayout(layout) {
  $("layout").value = layout;
  state.panels.setLayout(layout);
  root.dataset.layout = state.panels.layout;
}

function setPlane(plane) {
  $("plane").value = plane;
  state.panels.setPlane(plane);
}

function jumpTo(lesion) {
  state.current = lesion.number;
  state.panels.setCrosshairMm(lesion.anchorMm);
  renderLesions();
}

function jumpRelative(step) {
  const lesions = state.editor.lesions();
  if (!lesions.length) return;
  const i = lesions.findIndex((l) => l.number === state.current);
  jumpTo(lesions[(i + step + lesions.length) % lesions.length] || lesions[0]);
}

function voteCurrent(fields) {
  if (state.readOnly || state.current === null || !state.editor.setVote(state.current, fields)) return;
  renderLesions();
  state.saver?.changed();
}

function toggleHelp(show) {
  const help = $("help");
  help.hidden = show === undefined ? !help.hidden : !show;
}

async function saveNow() {
  if (!state.saver || state.readOnly) return;
  flushCommits();
  try {
    await state.saver.saveNow();
  } catch (err) {
    showError(`Not saved: ${err.message || err}`);
  }
}

async function submit() {
  if (!state.saver || state.readOnly) return;
  if (!window.confirm("Submit this case? It becomes read-only (an admin can reopen it).")) return;
  flushCommits();
  try {
    await state.saver.submit();
    showSaveState("locked");
  } catch (err) {
    showError(`Not submitted: ${err.message || err}`);
  }
}

/** Shortcuts: [keys shown in the help, description, test(event), action]. */
const SHORTCUTS = [
  ["N / Esc", "navigate (click moves the crosshair)", (e) => e.key === "n" || e.key === "N", () => setTool("navigate")],
  ["P", "pen", (e) => e.key === "p" || e.key === "P", () => setTool("pen")],
  ["F", "filled outline (draw a closed contour)", (e) => e.key === "f" || e.key === "F", () => setTool("fill")],
  ["E", "eraser", (e) => e.key === "e" || e.key === "E", () => setTool("eraser")],
  ["X", "erase a whole lesion (click it)", (e) => e.key === "x" || e.key === "X", () => setTool("erase-lesion")],
  ["G", "grow a region from a click", (e) => e.key === "g" || e.key === "G", () => setTool("grow")],
  ["[ / ]", "pen size smaller / larger (1, 3, 5, 7)", (e) => e.key === "[" || e.key === "]", (e) => stepPenSize(e.key === "]" ? 1 : -1)],
  ["Ctrl+Z", "undo", (e) => (e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z", undo],
  ["Ctrl+Shift+Z / Ctrl+Y", "redo", (e) => (e.ctrlKey || e.metaKey) && ((e.shiftKey && e.key.toLowerCase() === "z") || e.key.toLowerCase() === "y"), redo],
  ["Ctrl+S", "save now", (e) => (e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s", saveNow],
  ["O", "show / hide the mask", (e) => e.key === "o" || e.key === "O", () => setOpacity(state.opacity > 0 ? 0 : state.lastOpacity)],
  ["A / C / S", "axial / coronal / sagittal", (e) => !e.shiftKey && ["a", "c", "s"].includes(e.key), (e) => setPlane({ a: "axial", c: "coronal", s: "sagittal" }[e.key])],
  ["L", "next layout (side by side, one large, multiplanar)", (e) => e.key === "l" || e.key === "L", () => setLayout({ side: "hero", hero: "mpr", mpr: "side" }[state.panels.layout])],
  ["V", "next panel as the large one", (e) => e.key === "v" || e.key === "V", () => state.panels.select(state.panels.selected + 1)],
  ["W", "next window preset of the large panel (auto, narrow, wide)", (e) => e.key === "w" || e.key === "W", () => state.panels.panels[state.panels.selected].cyclePreset()],
  ["↑ / ↓", "next / previous slice", (e) => e.key === "ArrowUp" || e.key === "ArrowDown" || e.key === "PageUp" || e.key === "PageDown", (e) => state.panels.moveSlice(e.key === "ArrowUp" || e.key === "PageUp" ? 1 : -1)],
  [", / .", "previous / next lesion", (e) => e.key === "," || e.key === ".", (e) => jumpRelative(e.key === "." ? 1 : -1)],
  ["Shift+C / Shift+W / Shift+M", "class of the current lesion: cortical / white matter / mixed", (e) => e.shiftKey && ["C", "W", "M"].includes(e.key), (e) => voteCurrent({ vote: { C: "cortical", W: "wm", M: "mixed" }[e.key] })],
  ["1 … 5", "confidence of the current lesion", (e) => /^[1-5]$/.test(e.key), (e) => voteCurrent({ confidence: Number(e.key) })],
  ["?", "this help", (e) => e.key === "?", () => toggleHelp()],
];

function renderHelp() {
  const table = $("help-keys");
  table.innerHTML = "<tbody></tbody>";
  for (const [keys, what] of SHORTCUTS) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.innerHTML = keys.split(" / ").map((k) => `<kbd>${k}</kbd>`).join(" / ");
    const td = document.createElement("td");
    td.textContent = what;
    tr.append(th, td);
    table.tBodies[0].append(tr);
  }
}

const DRAW_ONLY = new Set(["N / Esc", "P", "F", "E", "X", "G", "[ / ]", "Ctrl+Z", "Ctrl+Shift+Z / Ctrl+Y", "Ctrl+S", "Shift+C / Shift+W / Shift+M", "1 … 5"]);

/**
 * One keyboard handler for the page, in the capture phase on window: it runs before NiiVue's
 * own listeners on the focused canvas and stops every key there (NiiVue binds V, C, P, H/J/K/L,
 * M, arrows, and "?" to an alert; none of them must act behind the rater's back).
 */
function onKey(event) {
  const onCanvas = event.target instanceof HTMLCanvasElement;
  if (onCanvas) event.stopPropagation();
  if (event.type !== "keydown") return;
  const typing = event.target.closest?.("input, textarea, select") && !onCanvas;
  if (event.key === "Escape") {
    if (!$("help").hidden) toggleHelp(false);
    else if (!typing) setTool("navigate");
    return;
  }
  const isSave = (event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s";
  if (typing && !isSave) return;
  if (!state.panels?.panels.length || !state.editor) return;
  for (const [keys, , test, action] of SHORTCUTS) {
    if (!test(event)) continue;
    if (state.readOnly && DRAW_ONLY.has(keys)) {
      if (isSave) event.preventDefault();
      return;
    }
    event.preventDefault();
    action(event);
    return;
  }
}

// --- the lesion list -----------------------------------------------------------------------------

function renderLesions() {
  const lesions = state.editor.lesions();
  $("lesion-count").textContent = `${lesions.length}`;
  renderLesionList($("lesion-list"), lesions, {
    readOnly: state.readOnly,
    current: state.current,
    onJump: jumpTo,
    onFocus: (n) => {
      state.current = n;
    },
    onVote: (n, fields) => {
      state.current = n;
      if (state.editor.setVote(n, fields)) state.saver?.changed();
    },
    onResolve: (n, option) => {
      if (state.editor.resolve(n, option)) {
        renderLesions();
        state.saver?.changed();
      }
    },
  });
  root.dataset.lesions = String(lesions.length);
}

// --- saving --------------------------------------------------------------------------------------

function showSaveState(name, detail = {}) {
  const out = $("save-state");
  out.dataset.state = name;
  root.dataset.saveState = name;
  let text = SAVE_STATES[name] || name;
  if (name === "error" && detail.detail) text = `not saved: ${detail.detail}`;
  out.textContent = text;
  if (name === "locked") enterReadOnly();
}

async function getSnapshot() {
  flushCommits();
  const nv = state.panels.panels[0].nv;
  nv.drawBitmap.set(state.editor.mask); // the panels hold the same mask; be sure of it
  const nifti = await nv.saveImage({ filename: "", isSaveDrawing: true });
  if (!(nifti instanceof Uint8Array)) throw new Error("NiiVue returned no mask bytes");
  return { nifti, lesions: state.editor.lesionPayload() };
}

async function makeSaver(latestRevisionId) {
  const options = {
    assignmentId: config.assignment_id,
    latestRevisionId,
    csrfToken,
    apiBase,
    user: document.querySelector(".logout .muted")?.textContent || "",
    getSnapshot,
    getBitmap: () => state.editor.mask,
    onState: showSaveState,
    onSaved: (revision) => {
      if (revision?.lesions) {
        state.editor.adopt(revision.lesions);
        renderLesions();
      }
      state.history?.refresh?.();
    },
    onConflict: ({ latestRevision }) => {
      conflictPrompt(latestRevision);
      state.history?.refresh?.();
    },
    loadRevision,
  };
  try {
    const { CaseSaver } = await import(config.modules.saving);
    return new CaseSaver(options);
  } catch (err) {
    console.error("annotate/saving.js could not be loaded:", err);
    return new UnavailableSaver(options);
  }
}

/** Stands in for CaseSaver when its module cannot be loaded: says so, never claims "saved". */
class UnavailableSaver {
  constructor({ onState }) {
    this.onState = onState;
    this.state = "error";
    this.detail = { detail: "the saving module could not be loaded: reload the page" };
  }
  changed() {
    this.onState(this.state, this.detail);
  }
  async saveNow() {
    this.changed();
    return this.state;
  }
  async submit() {
    throw new Error(this.detail.detail);
  }
  async restore() {
    throw new Error(this.detail.detail);
  }
  hasUnsaved() {
    return true;
  }
}

/**
 * Unsaved changes an earlier visit left in this browser (the tab was closed while the server was
 * unreachable, the browser crashed): the saver's "restore unsaved changes" offer, above the
 * panels. Restoring loads the draft's mask and lesion entries and saves them at once.
 */
function offerDraft() {
  if (!state.saver.applyDraftPrompt) return;
  const box = document.createElement("div");
  box.className = "draft-slot";
  $("ws-notice").after(box);
  state.saver
    .applyDraftPrompt(box, (draft) => loadMaskBytes(draft.mask, draft.lesions || []))
    .catch((err) => console.warn("no draft offer:", err));
}

/**
 * After a conflict the saver stops saving until the rater chooses (saver.resolveConflict): keep
 * mine (this tab's mask saved on top of the other save) or take theirs (load the other save;
 * this tab's mask stays on the server as the conflict copy).
 */
function conflictPrompt(latestRevision) {
  notice(
    `This case was saved from another tab or window (revision ${latestRevision}). Your version was kept as a conflict copy. ` +
      "Continue from: ",
  );
  for (const [choice, label, title] of [
    ["mine", "Keep mine", "save this tab's mask on top of the other save (both stay in the history)"],
    ["theirs", "Take theirs", "show the other save; this tab's mask stays in the history as the conflict copy"],
  ]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.title = title;
    button.dataset.testid = `conflict-${choice}`;
    button.addEventListener("click", async () => {
      flushCommits();
      for (const b of $("ws-notice").querySelectorAll("button")) b.disabled = true;
      try {
        await state.saver.resolveConflict(choice);
        notice("");
      } catch (err) {
        showError(`Conflict not resolved: ${err.message || err}`);
        for (const b of $("ws-notice").querySelectorAll("button")) b.disabled = false;
      }
      state.history?.refresh?.();
    });
    $("ws-notice").append(button, " ");
  }
}

async function mountHistory() {
  const container = $("history");
  try {
    const { renderHistory } = await import(new URL("./annotate/history.js", import.meta.url).href);
    state.history = renderHistory(container, {
      assignmentId: config.assignment_id,
      apiBase,
      readOnly: state.readOnly,
      onRestore: async (revision) => state.saver.restore(idOf(revision)),
      onOpen: (revision) => loadRevision(revision),
    });
  } catch (err) {
    console.warn("no revision history panel:", err);
  }
}

// --- read-only -----------------------------------------------------------------------------------

function enterReadOnly() {
  state.readOnly = true;
  root.dataset.readOnly = "1";
  for (const el of root.querySelectorAll(".draw-only, [data-action=save], [data-action=submit]")) el.hidden = true;
  if (state.panels?.panels.length) setTool("navigate");
  if (state.editor) refreshView();
}

// --- start ---------------------------------------------------------------------------------------

async function main() {
  renderHelp();
  window.addEventListener("keydown", onKey, { capture: true });
  window.addEventListener("keyup", onKey, { capture: true });
  root.addEventListener("click", (event) => {
    const tool = event.target.closest("button[data-tool]")?.dataset.tool;
    if (tool) setTool(tool);
    const action = event.target.closest("button[data-action]")?.dataset.action;
    if (action === "undo") undo();
    else if (action === "redo") redo();
    else if (action === "save") saveNow();
    else if (action === "submit") submit();
    else if (action === "help") toggleHelp(true);
    else if (action === "help-close") toggleHelp(false);
  });

  const detail = await getJson(`${apiBase}/assignments/${config.assignment_id}/`);
  state.readOnly = Boolean(detail.read_only ?? config.read_only);
  if (state.readOnly) enterReadOnly();
  if (detail.rateable === false) {
    showError(`This case cannot be rated yet: ${detail.not_rateable_reason || "its data are incomplete"}.`);
    root.dataset.ready = "error";
    return;
  }
  const specs = detail.panels || [];
  if (!specs.length) throw new Error("the case has no panels to show");

  state.panels = new PanelSet($("panels"), specs, { niivueUrl: root.dataset.niivue });
  await state.panels.load();
  const grid = new Grid(state.panels.panels[0].viewer.volume);
  state.editor = new CaseEditor(grid, {
    minDiameterMm: Number(detail.min_lesion_diameter_mm ?? config.min_lesion_diameter_mm ?? 2),
    firstNewNumber: Number(detail.next_lesion_number ?? 1),
    onChange: (change, source) => state.panels.applyChange(change, source),
    onEdited: edited,
  });
  state.panels.initDrawing(null, state.opacity);

  // The end of a stroke, wherever the mouse is released (before NiiVue's own mouseup handler).
  window.addEventListener("mouseup", () => state.panels.panels.forEach((p) => state.panels.endStroke(p)), { capture: true });
  for (const panel of state.panels.panels) {
    // Capture phase: before NiiVue's own mousedown handler (its first pen dab is part of the stroke).
    panel.canvas.addEventListener(
      "mousedown",
      (event) => {
        panel.pressed = true;
        if (event.button === 0 && PEN_MODES[state.tool] && !state.readOnly) state.panels.beginStroke(panel);
      },
      { capture: true },
    );
    panel.nv.addEventListener("drawingChanged", (event) => {
      if (event.detail?.action === "draw") scheduleCommit(panel);
    });
    panel.nv.addEventListener("mouseUp", (event) => {
      if (!panel.pressed) return;
      panel.pressed = false;
      if (state.readOnly) return;
      if (PEN_MODES[state.tool]) scheduleCommit(panel);
      else if (state.tool === "erase-lesion" || state.tool === "grow") toolClick(panel, event.detail);
    });
  }

  const latestId = idOf(detail.latest_revision);
  if (latestId) await loadRevision(latestId);
  else {
    state.editor.reset(state.editor.mask);
    refreshView();
  }

  if (!state.readOnly) {
    state.saver = await makeSaver(latestId);
    showSaveState(state.saver.state && state.saver.state !== "idle" ? state.saver.state : "saved");
    offerDraft();
  } else {
    showSaveState(detail.status === "submitted" ? "locked" : "readonly");
  }
  mountHistory();

  $("pen-size").addEventListener("change", (e) => setPenSize(Number(e.target.value)));
  $("opacity").addEventListener("input", (e) => setOpacity(Number(e.target.value)));
  $("layout").addEventListener("change", (e) => setLayout(e.target.value));
  $("plane").addEventListener("change", (e) => setPlane(e.target.value));
  setTool(state.readOnly ? "navigate" : "pen");
  window.addEventListener("beforeunload", (event) => {
    if (state.saver?.hasUnsaved?.()) event.preventDefault();
  });

  window.qsmWorkspace = {
    get viewers() {
      return state.panels.viewers;
    },
    panels: state.panels,
    editor: state.editor,
    grid,
    get mask() {
      return state.editor.mask;
    },
    lesions: () => state.editor.lesions(),
    get saver() {
      return state.saver;
    },
    getSnapshot,
    setCrosshairMm: (mm) => state.panels.setCrosshairMm(mm),
    indexOfMm: (mm) => grid.indexOfMm(mm),
    /** Where world point ``mm`` is on a panel's canvas, in page (client) pixels, or null. */
    screenOfMm(mm, panelIndex = 0) {
      const panel = state.panels.panels[panelIndex];
      const pos = panel.nv.frac2canvasPos(panel.nv.mm2frac(mm));
      if (!pos) return null;
      const box = panel.canvas.getBoundingClientRect();
      const scale = box.width / panel.canvas.width; // canvas pixels -> CSS pixels
      return { x: box.left + pos[0] * scale, y: box.top + pos[1] * scale };
    },
    setVoxels: (indices, value = 1) => state.editor.setVoxels(indices, value),
    undo,
    redo,
    setTool,
    loadMaskBytes,
  };
  await twoFrames();
  root.dataset.ready = "1";
}

main().catch((err) => {
  console.error(err);
  showError(`The workspace could not load this case: ${err?.message || err}`);
  root.dataset.ready = "error";
});
