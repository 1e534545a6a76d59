// Live progress on the processing page: poll the study's processing API and redraw job cells.
import { escapeHtml } from "./html.js";

const table = document.querySelector("table.processing");
const ACTIVE = new Set(["queued", "running"]);

function renderJob(cell, job) {
  const state = cell.querySelector(".job-state");
  if (!job) return;
  state.dataset.job = String(job.id);
  state.innerHTML =
    `<span class="status status-${escapeHtml(job.status)}">${escapeHtml(job.status)}</span>` +
    `<progress max="100" value="${Number(job.progress)}"></progress>` +
    `<small class="stage">${escapeHtml(job.stage)}</small>` +
    (job.error ? `<div class="job-error" data-testid="job-error"><strong>Error</strong><pre>${escapeHtml(job.error)}</pre></div>` : "");
}

function renderSeries(tr, seriesByKind) {
  for (const cell of tr.querySelectorAll("td.series")) {
    const list = seriesByKind[cell.dataset.kind] || [];
    cell.innerHTML = list.length
      ? list
          .map((s) => `<span class="version" title="series #${s.id}${s.derived_by ? `, from job #${s.derived_by}` : ""}">${s.label ? escapeHtml(s.label) + " " : ""}${escapeHtml(s.version_label)}</span>`)
          .join(" ")
      : '<span class="missing">–</span>';
  }
}

async function poll() {
  let anyActive = false;
  try {
    const response = await fetch(table.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) {
      const rows = await response.json();
      for (const row of rows) {
        const tr = table.querySelector(`tr[data-session="${row.session}"]`);
        if (!tr) continue;
        renderSeries(tr, row.series);
        for (const [kind, job] of Object.entries(row.latest_jobs)) {
          const cell = tr.querySelector(`td.job[data-kind="${kind}"]`);
          if (cell) renderJob(cell, job);
          if (ACTIVE.has(job.status)) anyActive = true;
        }
      }
      table.dataset.polled = String(Date.now());
    }
  } catch (err) {
    console.warn("processing poll failed", err);
  }
  setTimeout(poll, anyActive ? 1000 : 4000);
}

if (table) poll();
