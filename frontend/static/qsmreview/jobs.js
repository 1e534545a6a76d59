// The jobs page: poll the jobs API and redraw the table (progress bars, stage, status, errors),
// and send cancel / retry for the jobs the user administers. Plain ES module, no bundler.
import { escapeHtml as esc } from "./html.js";

const table = document.getElementById("jobs");
const ACTIVE = new Set(["queued", "running"]);
const FAST_MS = 1500; // while some job is queued or running
const SLOW_MS = 5000;

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function truncate(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

// Mirrors qsmreview/templates/web/_job_row.html.
function rowHtml(job) {
  const progress = Number(job.progress) || 0;
  const cancelling = job.cancel_requested && job.status === "running" ? ' <span class="muted">cancelling…</span>' : "";
  const runtime = job.runtime_seconds == null ? "" : `<div class="muted runtime">${Number(job.runtime_seconds).toFixed(1)} s</div>`;
  const attempt = job.attempts > 1 ? `<div class="muted">attempt ${Number(job.attempts)}</div>` : "";
  const retryOf = job.retry_of ? `<div class="muted">retry of #${Number(job.retry_of)}</div>` : "";
  const error = job.error
    ? `<details><summary>${esc(truncate(job.error, 80))}</summary><pre>${esc(job.error)}</pre></details>`
    : "";
  const actions =
    (job.can_cancel ? '<button type="button" data-action="cancel">Cancel</button>' : "") +
    (job.can_retry ? '<button type="button" data-action="retry">Retry</button>' : "");
  return (
    `<tr data-job="${Number(job.id)}" data-status="${esc(job.status)}">` +
    `<td class="id">#${Number(job.id)}${retryOf}</td>` +
    `<td class="kind">${esc(job.kind_title)}</td>` +
    `<td class="target">${esc(job.target || "–")}</td>` +
    `<td class="state"><span class="status status-${esc(job.status)}">${esc(job.status)}</span>${cancelling}</td>` +
    `<td class="progress"><progress max="100" value="${progress}">${progress}%</progress> <span class="pct">${progress}%</span><div class="stage">${esc(job.stage)}</div></td>` +
    `<td class="timing"><time datetime="${esc(job.created_at)}">${esc(when(job.created_at))}</time>${runtime}</td>` +
    `<td class="worker">${esc(job.worker || "–")}${attempt}</td>` +
    `<td class="error">${error}</td>` +
    `<td class="actions">${actions}</td>` +
    `</tr>`
  );
}

function render(jobs) {
  const tbody = table.tBodies[0];
  // Keep open error details open across redraws.
  const open = new Set([...tbody.querySelectorAll("tr[data-job] details[open]")].map((d) => d.closest("tr").dataset.job));
  tbody.innerHTML = jobs.length
    ? jobs.map(rowHtml).join("")
    : '<tr class="empty"><td colspan="9" class="muted">No jobs.</td></tr>';
  for (const id of open) tbody.querySelector(`tr[data-job="${id}"] details`)?.setAttribute("open", "");
}

function apiUrl() {
  const url = new URL(table.dataset.api, window.location.origin);
  if (table.dataset.status) url.searchParams.set("status", table.dataset.status);
  if (table.dataset.study) url.searchParams.set("study", table.dataset.study);
  return url;
}

let timer = null;

async function poll() {
  clearTimeout(timer);
  let delay = SLOW_MS;
  try {
    const response = await fetch(apiUrl(), { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) {
      const page = await response.json();
      const jobs = page.results ?? page;
      render(jobs);
      if (jobs.some((job) => ACTIVE.has(job.status))) delay = FAST_MS;
      table.dataset.polled = String(Date.now());
    } else if (response.status === 401 || response.status === 403) {
      document.getElementById("jobs-live").textContent = "Your session has ended: reload the page to log in again.";
      return;
    }
  } catch (err) {
    console.warn("jobs poll failed", err);
  }
  timer = setTimeout(poll, delay);
}

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

async function act(jobId, action, button) {
  button.disabled = true;
  try {
    const response = await fetch(`${table.dataset.api}${jobId}/${action}/`, {
      method: "POST",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      window.alert(body.detail || `${action} failed (${response.status})`);
    }
  } finally {
    poll();
  }
}

if (table) {
  for (const time of table.querySelectorAll("time[datetime]")) time.textContent = when(time.getAttribute("datetime"));
  table.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    act(button.closest("tr").dataset.job, button.dataset.action, button);
  });
  poll();
}
