// The revision history panel of the rater workspace: every saved version of the case, newest
// first (GET <apiBase>/assignments/<id>/revisions/), with its number, kind (save, restore,
// conflict copy), time, lesion count and author; "Restore" makes an older revision the latest
// again (through the caller, normally `saver.restore(id)`), "Open" shows a conflict copy.
//
//   import { renderHistory } from "/static/qsmreview/annotate/history.js";
//   const history = renderHistory(container, {
//     assignmentId, apiBase: "/api/v1", readOnly: false,
//     onRestore: async (revision) => saver.restore(revision.id),
//     onOpen: (revision) => { /* show revision.id's mask, e.g. as an overlay */ },
//   });
//   await history.ready;          // first listing shown
//   await history.refresh();      // after a save, restore or conflict (e.g. from onSaved)
//   history.dispose();
//
// The newest revision that is not a conflict copy is the latest: it has no Restore button.
// readOnly (admin / PI viewing a rater's case) hides Restore; Open stays.
import { escapeHtml } from "../html.js";

const KIND_LABELS = { save: "save", restore: "restore", conflict: "conflict copy" };

function authorName(author) {
  if (author === null || author === undefined) return "";
  if (typeof author === "object") return author.username ?? author.name ?? String(author.id ?? "");
  return String(author);
}

function lesionCount(revision) {
  if (Array.isArray(revision.lesions)) return revision.lesions.length;
  return revision.lesion_count ?? "";
}

function restoredFrom(revision, byId) {
  const source = revision.restored_from;
  if (source === null || source === undefined) return "";
  const id = typeof source === "object" ? source.id : source;
  const number = byId.get(id)?.number;
  return number ? ` of #${number}` : "";
}

export function renderHistory(container, { assignmentId, apiBase = "/api/v1", readOnly = false, onRestore, onOpen }) {
  const root = document.createElement("div");
  root.className = "revision-history";
  root.dataset.testid = "revision-history";
  root.innerHTML =
    '<table><thead><tr><th>#</th><th>kind</th><th>time</th><th>lesions</th><th>author</th><th></th></tr></thead>' +
    '<tbody></tbody></table><p class="muted status" data-testid="history-status"></p>';
  container.append(root);
  const tbody = root.querySelector("tbody");
  const status = root.querySelector(".status");
  let disposed = false;

  /** Every revision, newest first (the list is paginated: follow `next`). */
  async function load() {
    const revisions = [];
    let url = `${apiBase}/assignments/${assignmentId}/revisions/?page_size=500`;
    while (url) {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
      if (Array.isArray(body)) return body;
      revisions.push(...(body.results ?? []));
      url = body.next || null;
    }
    return revisions;
  }

  function row(revision, latestId, byId) {
    const tr = document.createElement("tr");
    tr.dataset.revision = String(revision.id);
    tr.dataset.kind = revision.kind;
    if (revision.id === latestId) tr.classList.add("latest");
    const when = revision.created_at ? new Date(revision.created_at).toLocaleString() : "";
    const kind = (KIND_LABELS[revision.kind] ?? revision.kind) + restoredFrom(revision, byId);
    tr.innerHTML =
      `<td class="number">${escapeHtml(revision.number)}</td><td class="kind">${escapeHtml(kind)}` +
      `${revision.id === latestId ? ' <small class="muted">(latest)</small>' : ""}</td>` +
      `<td class="time">${escapeHtml(when)}</td><td class="lesions">${escapeHtml(lesionCount(revision))}</td>` +
      `<td class="author">${escapeHtml(authorName(revision.author))}</td><td class="actions"></td>`;
    const actions = tr.querySelector(".actions");
    if (revision.kind === "conflict" && onOpen) {
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Open conflict copy";
      open.dataset.action = "open";
      open.addEventListener("click", () => onOpen(revision));
      actions.append(open);
    }
    if (!readOnly && onRestore && revision.id !== latestId) {
      const restore = document.createElement("button");
      restore.type = "button";
      restore.textContent = "Restore";
      restore.dataset.action = "restore";
      restore.title = `make revision #${revision.number} the latest again (a new revision; nothing is deleted)`;
      restore.addEventListener("click", async () => {
        restore.disabled = true;
        status.textContent = `restoring #${revision.number}…`;
        try {
          await onRestore(revision);
          status.textContent = `restored #${revision.number}`;
          await refresh();
        } catch (err) {
          status.textContent = `could not restore #${revision.number}: ${err.message}`;
          restore.disabled = false;
        }
      });
      actions.append(restore);
    }
    return tr;
  }

  async function refresh() {
    if (disposed) return;
    try {
      const revisions = await load();
      if (disposed) return;
      const byId = new Map(revisions.map((r) => [r.id, r]));
      const latest = revisions.find((r) => r.kind !== "conflict");
      tbody.replaceChildren(...revisions.map((r) => row(r, latest?.id, byId)));
      if (!revisions.length) status.textContent = "nothing saved yet";
      else if (!status.textContent.startsWith("restor")) status.textContent = "";
      root.dataset.loaded = String(revisions.length);
    } catch (err) {
      status.textContent = `history unavailable: ${err.message}`;
    }
  }

  const ready = refresh();
  return {
    element: root,
    ready,
    refresh,
    dispose() {
      disposed = true;
      root.remove();
    },
  };
}
