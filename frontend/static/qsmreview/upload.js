// The upload page: pick or create a subject and session, drop NIfTI files (and JSON sidecars),
// correct the guessed kind/label/echo times, upload each file with its own progress bar and show
// the server's verdict; or send a BIDS dataset as a zip to the import endpoint.
//
// Writes go through the API (subjects, sessions, series, BIDS import), whose services check the
// caller's rights; this page only guesses and shows.
import { escapeHtml } from "./html.js";

const config = JSON.parse(document.getElementById("upload-config").textContent);
const root = document.querySelector('[data-testid="upload"]');
const $ = (testid) => root.querySelector(`[data-testid="${testid}"]`);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const ECHO_KINDS = new Set(["t2star_mag", "t2star_phase"]);
const NEW = "new";

// --- guessing from names and sidecars ------------------------------------------------------------

const NIFTI = /^(.+?)\.nii(\.gz)?$/i;

/** BIDS entities and suffix of a file stem: {entities: {sub: "01", echo: "2", ...}, suffix}. */
export function parseBids(stem) {
  const parts = stem.split("_");
  const entities = {};
  for (const part of parts.slice(0, -1)) {
    const i = part.indexOf("-");
    if (i <= 0) return { entities: {}, suffix: "" };
    entities[part.slice(0, i)] = part.slice(i + 1);
  }
  return { entities, suffix: parts[parts.length - 1] };
}

/** The series kind and label a file name suggests (BIDS first, then common words). */
export function guessFromName(filename) {
  const match = filename.match(NIFTI);
  const stem = match ? match[1] : filename;
  const { entities, suffix } = parseBids(stem);
  const lower = stem.toLowerCase();
  const acq = (entities.acq || "").toLowerCase();
  let kind = "";
  if (suffix === "T2starw" || suffix === "MEGRE") kind = entities.part === "phase" ? "t2star_phase" : "t2star_mag";
  else if (suffix === "T1w" && ["wmn", "wmnulled", "wmnull"].includes(acq)) kind = "t1_wmn";
  else if (suffix === "T1w" && ["csfn", "csfnulled", "csfnull"].includes(acq)) kind = "t1_csfn";
  else if (suffix === "FLAIR") kind = "flair";
  else if (suffix === "Chimap") kind = "qsm";
  else if (suffix === "dseg") kind = "tissue";
  else if (suffix === "mask") kind = /lesion/.test((entities.desc || entities.label || "").toLowerCase()) ? "lesion_mask" : "brain_mask";
  else if (/flair/.test(lower)) kind = "flair";
  else if (/qsm|chi/.test(lower)) kind = "qsm";
  else if (/lesion/.test(lower)) kind = "lesion_mask";
  else if (/mask/.test(lower)) kind = "brain_mask";
  else if (/phase|_ph\b|pha/.test(lower)) kind = "t2star_phase";
  else if (/mag|t2star|t2s|gre/.test(lower)) kind = "t2star_mag";
  else if (/wmn|wm-?null/.test(lower)) kind = "t1_wmn";
  else if (/csfn|csf-?null/.test(lower)) kind = "t1_csfn";
  else kind = "other";
  const label = [];
  if (entities.echo) label.push(`echo-${entities.echo}`);
  if (entities.acq && kind !== "t1_wmn" && kind !== "t1_csfn") label.push(`acq-${entities.acq}`);
  if (entities.run) label.push(`run-${entities.run}`);
  return { stem, kind, label: label.join("_") };
}

/** Echo times (s) and field strength (T) from a parsed JSON sidecar. */
export function fromSidecar(meta) {
  const te = meta?.EchoTime;
  const list = te === undefined || te === null ? [] : Array.isArray(te) ? te : [te];
  const echoTimes = list.map(Number).filter((t) => Number.isFinite(t) && t > 0);
  const b0 = Number(meta?.MagneticFieldStrength);
  return { echoTimes, b0: Number.isFinite(b0) && b0 > 0 ? b0 : null };
}

// --- subject and session ------------------------------------------------------------------------

const subjectSelect = $("subject");
const sessionSelect = $("session");

function option(value, text) {
  const el = document.createElement("option");
  el.value = value;
  el.textContent = text;
  return el;
}

function fillSubjects(selected) {
  subjectSelect.replaceChildren(
    ...config.subjects.map((s) => option(String(s.id), s.code)),
    option(NEW, "+ new subject…"),
  );
  subjectSelect.value = selected ?? (config.subjects.length ? String(config.subjects[0].id) : NEW);
  fillSessions();
}

function fillSessions(selected) {
  const subjectId = Number(subjectSelect.value);
  const sessions = config.sessions.filter((s) => s.subject === subjectId);
  sessionSelect.replaceChildren(...sessions.map((s) => option(String(s.id), s.label)), option(NEW, "+ new session…"));
  sessionSelect.value = selected ?? (sessions.length ? String(sessions[0].id) : NEW);
  toggleNew();
}

function toggleNew() {
  root.querySelector(".new-subject").hidden = subjectSelect.value !== NEW;
  root.querySelector(".new-session").hidden = sessionSelect.value !== NEW;
}

subjectSelect.addEventListener("change", () => fillSessions());
sessionSelect.addEventListener("change", toggleNew);

async function apiPost(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

/** The session to upload to: the selected one, or a new subject/session created now. */
async function ensureSession() {
  if (subjectSelect.value === NEW) {
    const code = $("subject-code").value.trim();
    if (!code) throw new Error("type the new subject's code");
    const subject = await apiPost(config.urls.subjects, { study: config.study, code });
    config.subjects.push({ id: subject.id, code: subject.code });
    fillSubjects(String(subject.id));
    sessionSelect.value = NEW;
    toggleNew();
  }
  if (sessionSelect.value === NEW) {
    const label = $("session-label").value.trim();
    if (!label) throw new Error("type the new session's label (e.g. 01)");
    const session = await apiPost(config.urls.sessions, { subject: Number(subjectSelect.value), label });
    config.sessions.push({ id: session.id, subject: session.subject, label: session.label });
    fillSessions(String(session.id));
  }
  return Number(sessionSelect.value);
}

// --- files --------------------------------------------------------------------------------------

const tbody = $("file-table").querySelector("tbody");
const rows = []; // {file, stem, tr, state, b0, userEdited}
const sidecars = new Map(); // stem -> parsed JSON

function kindSelect(value) {
  const select = document.createElement("select");
  select.name = "kind";
  for (const k of config.kinds) select.append(option(k.value, k.label));
  select.value = value;
  return select;
}

function humanBytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let i = 0;
  let value = n;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[i]}`;
}

function applySidecar(row) {
  const meta = sidecars.get(row.stem);
  if (!meta || row.userEdited) return;
  const { echoTimes, b0 } = fromSidecar(meta);
  row.b0 = b0;
  const kind = row.tr.querySelector("select[name=kind]").value;
  if (ECHO_KINDS.has(kind) && echoTimes.length) row.tr.querySelector("input[name=echo_times_s]").value = echoTimes.join(",");
  row.tr.querySelector(".sidecar").textContent = `+ ${row.stem}.json`;
}

function addNifti(file) {
  const guess = guessFromName(file.name);
  const tr = document.createElement("tr");
  tr.dataset.file = file.name;
  tr.dataset.state = "pending";
  tr.innerHTML =
    '<td class="name"></td><td class="kind"></td><td><input name="label" size="12"></td>' +
    '<td><input name="echo_times_s" size="14" placeholder="e.g. 0.004,0.008"></td>' +
    '<td><progress max="100" value="0"></progress></td><td class="result muted">ready</td>' +
    '<td><button type="button" class="remove" title="remove from the list">×</button></td>';
  tr.querySelector(".name").innerHTML = '<span class="fname"></span><br><small class="muted size"></small> <small class="muted sidecar"></small>';
  tr.querySelector(".fname").textContent = file.name;
  tr.querySelector(".size").textContent = humanBytes(file.size);
  tr.querySelector(".kind").append(kindSelect(guess.kind));
  tr.querySelector("input[name=label]").value = guess.label;
  const row = { file, stem: guess.stem, tr, state: "pending", b0: null, userEdited: false };
  for (const input of tr.querySelectorAll("input, select")) input.addEventListener("change", () => (row.userEdited = true));
  tr.querySelector("button.remove").addEventListener("click", () => {
    rows.splice(rows.indexOf(row), 1);
    tr.remove();
    refresh();
  });
  if (file.size > config.max_upload_bytes) {
    setResult(row, "refused", `larger than the upload limit (${humanBytes(config.max_upload_bytes)})`);
  }
  rows.push(row);
  tbody.append(tr);
  applySidecar(row);
}

async function addFiles(fileList) {
  const files = Array.from(fileList);
  for (const file of files.filter((f) => f.name.toLowerCase().endsWith(".json"))) {
    try {
      sidecars.set(file.name.replace(/\.json$/i, ""), JSON.parse(await file.text()));
    } catch (err) {
      showSummary(`${file.name}: not valid JSON (${err.message}); ignored`);
    }
  }
  for (const file of files.filter((f) => NIFTI.test(f.name))) addNifti(file);
  for (const row of rows) applySidecar(row);
  const ignored = files.filter((f) => !NIFTI.test(f.name) && !f.name.toLowerCase().endsWith(".json"));
  if (ignored.length) showSummary(`ignored (not NIfTI or JSON): ${ignored.map((f) => f.name).join(", ")}`);
  refresh();
}

function showSummary(text) {
  $("upload-summary").textContent = text;
}

function refresh() {
  $("file-table").hidden = rows.length === 0;
  $("upload-all").disabled = !rows.some((r) => r.state === "pending");
  // Per-echo files become one series each; QSM reads one (4-D) magnitude and one phase.
  const perEcho = rows.filter(
    (r) => r.state === "pending" && /(^|_)echo-\d+/.test(r.tr.querySelector("input[name=label]").value) &&
      ECHO_KINDS.has(r.tr.querySelector("select[name=kind]").value),
  );
  const warning = $("echo-warning");
  warning.hidden = perEcho.length < 2;
  warning.textContent =
    `${perEcho.length} files are single echoes: each would become its own series, but QSM reads one ` +
    "multi-echo (4-D) magnitude and one phase. Send per-echo files as a BIDS zip below (their echoes " +
    "are stacked by echo time), or upload one 4-D file per part.";
}

function setResult(row, state, message, html = false) {
  row.state = state;
  row.tr.dataset.state = state;
  const cell = row.tr.querySelector(".result");
  cell.className = `result ${state}`;
  if (html) cell.innerHTML = message;
  else cell.textContent = message;
}

/** Upload one file with XMLHttpRequest (fetch has no upload progress); resolve with {status, body}. */
function send(row, sessionId) {
  return new Promise((resolve) => {
    const form = new FormData();
    const tr = row.tr;
    form.append("session", String(sessionId));
    form.append("kind", tr.querySelector("select[name=kind]").value);
    form.append("label", tr.querySelector("input[name=label]").value.trim());
    const tes = tr.querySelector("input[name=echo_times_s]").value.trim();
    if (tes) form.append("echo_times_s", tes);
    if (row.b0) form.append("b0_t", String(row.b0));
    form.append("file", row.file, row.file.name);
    const xhr = new XMLHttpRequest();
    const bar = tr.querySelector("progress");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    };
    xhr.onload = () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = { detail: xhr.responseText.slice(0, 300) || xhr.statusText };
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: { detail: "network error: the upload did not reach the server" } });
    // The session in the URL too: the server checks the right to write there before it reads
    // a byte of the body (a refused upload is not streamed to disk first).
    xhr.open("POST", `${config.urls.series}?session=${encodeURIComponent(sessionId)}`);
    xhr.setRequestHeader("X-CSRFToken", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.send(form);
  });
}

async function uploadAll() {
  const button = $("upload-all");
  button.disabled = true;
  let sessionId;
  try {
    sessionId = await ensureSession();
  } catch (err) {
    showSummary(`Cannot upload: ${err.message}`);
    refresh();
    return;
  }
  let accepted = 0;
  let refused = 0;
  for (const row of rows.filter((r) => r.state === "pending")) {
    setResult(row, "uploading", "uploading…");
    const { status, body } = await send(row, sessionId);
    if (status === 201) {
      accepted += 1;
      row.tr.querySelector("progress").value = 100;
      const where = body.space === "native" ? "own grid (native)" : "T2* grid";
      setResult(
        row,
        "accepted",
        `accepted: series #${body.id}, v${body.version}, ${escapeHtml(where)}, shape ${body.shape.join(" × ")} ` +
          `<a href="/series/${body.id}/view/">view</a>`,
        true,
      );
    } else {
      refused += 1;
      setResult(row, "refused", `refused (${status || "no answer"}): ${body.detail || "unknown error"}`);
    }
  }
  showSummary(`${accepted} accepted, ${refused} refused.`);
  root.dataset.done = String(Date.now());
  refresh();
}

// A file dropped next to the drop zone must not make the browser navigate away to open it.
for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());

const dropzone = $("dropzone");
const fileInput = $("files");
dropzone.addEventListener("dragover", (e) => {
  e.preventDefault();
  dropzone.classList.add("over");
});
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (e) => {
  e.preventDefault();
  dropzone.classList.remove("over");
  addFiles(e.dataTransfer.files);
});
fileInput.addEventListener("change", () => {
  addFiles(fileInput.files);
  fileInput.value = "";
});
dropzone.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    fileInput.click();
  }
});
tbody.addEventListener("change", refresh);
$("upload-all").addEventListener("click", uploadAll);

// --- BIDS zip -----------------------------------------------------------------------------------

const bidsFile = $("bids-file");
const bidsButton = $("bids-import");
bidsFile.addEventListener("change", () => (bidsButton.disabled = !bidsFile.files.length));

function reportRow(path, result, details, state) {
  const tr = document.createElement("tr");
  tr.dataset.state = state;
  for (const text of [path, result, details]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

bidsButton.addEventListener("click", () => {
  const file = bidsFile.files[0];
  if (!file) return;
  const dryRun = $("bids-dry-run").checked;
  const bar = $("bids-progress");
  const status = $("bids-status");
  const table = $("bids-report");
  bar.hidden = false;
  bar.value = 0;
  status.textContent = "uploading…";
  table.hidden = true;
  bidsButton.disabled = true;
  const params = new URLSearchParams({ filename: file.name });
  if (dryRun) params.set("dry_run", "1");
  const xhr = new XMLHttpRequest();
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    if (e.loaded === e.total) status.textContent = "importing (checking every file)…";
  };
  xhr.onload = () => {
    bidsButton.disabled = false;
    let body = {};
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      body = { detail: xhr.responseText.slice(0, 300) || xhr.statusText };
    }
    if (xhr.status !== 200) {
      status.textContent = `refused (${xhr.status}): ${body.detail || "unknown error"}`;
      status.className = "refused";
      root.dataset.bids = "refused";
      return;
    }
    bar.value = 100;
    status.className = "accepted";
    status.textContent = body.summary + (body.dry_run ? " (dry run: nothing stored)" : "");
    if (!body.dry_run && body.imported.length) {
      const link = document.createElement("a");
      link.href = config.urls.study_page;
      link.textContent = "see them on the study page";
      status.append(" · ", link);
    }
    const tb = table.querySelector("tbody");
    tb.replaceChildren();
    for (const item of body.imported) {
      const what = `sub-${item.subject} ses-${item.session} ${item.kind}${item.label ? ` '${item.label}'` : ""}`;
      tb.append(reportRow(item.path, body.dry_run ? "would import" : "imported", item.series ? `${what} → series #${item.series}` : what, "accepted"));
    }
    for (const item of body.skipped) tb.append(reportRow(item.path, `skipped: ${item.category}`, item.reason, "refused"));
    table.hidden = false;
    root.dataset.bids = "done";
  };
  xhr.onerror = () => {
    bidsButton.disabled = false;
    status.textContent = "network error: the zip did not reach the server";
    root.dataset.bids = "refused";
  };
  xhr.open("POST", `${config.urls.bids}?${params}`);
  xhr.setRequestHeader("Content-Type", "application/zip");
  xhr.setRequestHeader("X-CSRFToken", csrfToken);
  xhr.setRequestHeader("Accept", "application/json");
  xhr.send(file);
});

fillSubjects();
refresh();
root.dataset.ready = "true";
