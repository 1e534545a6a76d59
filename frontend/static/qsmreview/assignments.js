// The study's assignments and progress page: refresh the table every few seconds (keeping ticked
// boxes and open histories), and, for the study's admins, assign / unassign / reopen through the
// REST API. The table's HTML comes from the server (?partial=rows): one rendering, no JS copy.
import { escapeHtml as esc } from "./html.js";

const table = document.getElementById("progress");
const manage = table?.dataset.manage === "true";
const statusLine = document.getElementById("assign-status");
const dialog = document.getElementById("reason-dialog");

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

function say(text, kind = "success") {
  if (!statusLine) return;
  statusLine.textContent = text;
  statusLine.className = `message ${kind}`;
  statusLine.hidden = false;
}

// --- refresh -------------------------------------------------------------------------------------

const REFRESH_MS = (Number(table?.dataset.refresh) || 15) * 1000;
let timer = null;

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

async function refresh() {
  clearTimeout(timer);
  try {
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "rows");
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.ok) {
      replaceTable(await response.text());
      table.dataset.refreshed = String(Date.now());
    } else if (response.status === 404 || response.redirected) {
      say("You can no longer see this page: reload to log in again.", "error");
      return;
    }
  } catch (err) {
    console.warn("progress refresh failed", err);
  }
  table.addEventListener("refresh-now", refresh); // refresh at once (used by the tests)
  timer = setTimeout(refresh, REFRESH_MS);
}

/** Swap in the server's new rows, keeping ticked boxes and open histories (with their lists). */
function replaceTable(html) {
  const ticked = new Set([...table.querySelectorAll("input[name=cell]:checked")].map((box) => box.closest("td").dataset.key));
  const open = new Map(
    [...table.querySelectorAll("details.events[open]")].map((d) => [d.closest("td").dataset.assignment, d.querySelector("ol")]),
  );
  const parsed = new DOMParser().parseFromString(`<table>${html}</table>`, "text/html").querySelector("table");
  table.replaceChildren(...parsed.childNodes);
  for (const key of ticked) {
    const box = table.querySelector(`td[data-key="${CSS.escape(key)}"] input[name=cell]`);
    if (box) box.checked = true;
  }
  for (const [id, list] of open) {
    const details = table.querySelector(`td[data-assignment="${CSS.escape(id)}"] details.events`);
    if (!details) continue;
    details.querySelector("ol").replaceWith(list);
    details.open = true;
    loadEvents(details);
  }
  localiseTimes();
}

function localiseTimes() {
  for (const time of table.querySelectorAll("time[datetime]")) time.title = when(time.getAttribute("datetime"));
}

// --- the audit trail -------------------------------------------------------------------------------

function eventHtml(event) {
  const who = event.by_username || event.by_label || (typeof event.by === "string" ? event.by : "") || "system";
  const reason = event.reason ? ` <q class="reason">${esc(event.reason)}</q>` : "";
  return (
    `<li data-action="${esc(event.action)}"><strong>${esc(event.action)}</strong> by ${esc(who)} ` +
    `<time datetime="${esc(event.created_at)}">${esc(when(event.created_at))}</time>${reason}</li>`
  );
}

async function loadEvents(details) {
  const list = details.querySelector("ol");
  try {
    const response = await fetch(details.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = await response.json().catch(() => ({}));
    const events = body.results ?? body;
    list.innerHTML = response.ok && Array.isArray(events)
      ? events.map(eventHtml).join("") || '<li class="muted">No events.</li>'
      : `<li class="error">${esc(body.detail || `history failed (${response.status})`)}</li>`;
  } catch (err) {
    list.innerHTML = `<li class="error">${esc(String(err))}</li>`;
  }
  details.dataset.loaded = "true";
}

// --- admin actions ------------------------------------------------------------------------------

/** Ask for a reason in the page's dialog; resolves to the reason, or null when cancelled. */
function askReason({ title, text, confirm, required }) {
  const form = dialog.querySelector("form");
  const reason = form.elements.reason;
  dialog.querySelector(".title").textContent = title;
  dialog.querySelector(".text").textContent = text;
  dialog.querySelector(".required").hidden = !required;
  dialog.querySelector("button.confirm").textContent = confirm;
  reason.value = "";
  reason.required = required;
  dialog.returnValue = "";
  dialog.showModal();
  reason.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm" ? reason.value.trim() : null), { once: true });
  });
}

async function assign(body) {
  const { ok, data } = await api("POST", table.dataset.apiAssign, body);
  if (!ok) throw new Error(data.detail || "assigning failed");
  return Array.isArray(data) ? data.length : 0;
}

async function assignEverySession(event) {
  event.preventDefault();
  const raters = [...event.target.querySelectorAll("input[name=rater]:checked")].map((box) => Number(box.value));
  if (!raters.length) return say("Tick at least one rater.", "error");
  try {
    const n = await assign({ raters });
    say(`Assigned every session to ${raters.length} rater${raters.length === 1 ? "" : "s"} (${n} assignment${n === 1 ? "" : "s"}).`);
  } catch (err) {
    say(err.message, "error");
  }
  refresh();
}

async function assignTicked() {
  const byRater = new Map();
  for (const box of table.querySelectorAll("input[name=cell]:checked")) {
    const td = box.closest("td");
    const sessions = byRater.get(td.dataset.rater) ?? [];
    sessions.push(Number(td.dataset.session));
    byRater.set(td.dataset.rater, sessions);
  }
  if (!byRater.size) return say('Tick "assign" in at least one cell of the table.', "error");
  let n = 0;
  try {
    for (const [rater, sessions] of byRater) n += await assign({ raters: [Number(rater)], sessions });
    for (const box of table.querySelectorAll("input[name=cell]:checked")) box.checked = false;
    say(`Assigned ${n} case${n === 1 ? "" : "s"}.`);
  } catch (err) {
    say(err.message, "error");
  }
  refresh();
}

async function unassign(td) {
  const url = `${table.dataset.apiAssignments}${td.dataset.assignment}/`;
  const reason = await askReason({
    title: `Unassign ${td.dataset.label}?`,
    text: "The rater no longer sees this session. Their saved work is kept.",
    confirm: "Unassign",
    required: false,
  });
  if (reason === null) return;
  let result = await api("DELETE", url, { force: false, reason });
  if (result.status === 409) {
    const forced = await askReason({
      title: `Force unassign ${td.dataset.label}?`,
      text: result.data.detail || "The rater has saved work.",
      confirm: "Force unassign",
      required: true,
    });
    if (forced === null) return say("Nothing changed: the assignment stays.", "warning");
    result = await api("DELETE", url, { force: true, reason: forced });
  }
  if (result.ok) say(`Unassigned ${td.dataset.label}.`);
  else say(result.data.detail || `unassigning failed (${result.status})`, "error");
  refresh();
}

async function reopen(td) {
  const reason = await askReason({
    title: `Reopen ${td.dataset.label}?`,
    text: "The rater can change the submitted case again. The reason goes into the case's history.",
    confirm: "Reopen",
    required: true,
  });
  if (reason === null) return;
  const result = await api("POST", `${table.dataset.apiAssignments}${td.dataset.assignment}/reopen/`, { reason });
  if (result.ok) say(`Reopened ${td.dataset.label}.`);
  else say(result.data.detail || `reopening failed (${result.status})`, "error");
  refresh();
}

if (table) {
  localiseTimes();
  table.addEventListener("toggle", (event) => {
    const details = event.target;
    if (details.matches?.("details.events") && details.open && !details.dataset.loaded) loadEvents(details);
  }, true);
  if (manage) {
    document.getElementById("bulk-assign").addEventListener("submit", assignEverySession);
    document.querySelector("[data-action=assign-ticked]").addEventListener("click", assignTicked);
    table.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const td = button.closest("td");
      if (button.dataset.action === "unassign") unassign(td);
      else if (button.dataset.action === "reopen") reopen(td);
    });
  }
  table.addEventListener("refresh-now", refresh); // refresh at once (used by the tests)
  timer = setTimeout(refresh, REFRESH_MS);
}
