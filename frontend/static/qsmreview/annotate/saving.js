// The rater workspace's saving layer (issue 16, "never lose a stroke").
//
// INTERFACE (the workspace page wires it; keep it stable)
//
//   import { CaseSaver } from "/static/qsmreview/annotate/saving.js";
//   const saver = new CaseSaver({
//     assignmentId, latestRevisionId /* number|null */, csrfToken, apiBase: "/api/v1",
//     getSnapshot: async () => ({ nifti /* Uint8Array, uncompressed NIfTI from nv.saveImage */,
//                                 lesions /* contract entries {number, anchor_mm, vote, confidence, note} */ }),
//     getBitmap: () => Uint8Array /* nv.drawBitmap: the live mask, for change detection */,
//     onState: (state, detail) => {}, // "saved" | "dirty" | "saving" | "retrying" | "offline" |
//                                     // "conflict" | "locked" | "error"; detail: {detail?, ...}
//     onSaved: (revision) => {},      // the server's revision JSON (authoritative lesion table)
//     onConflict: ({ latestRevision, conflictRevision }) => {},  // revision ids
//     debounceMs: 3000,
//     // optional:
//     loadRevision: async (revision) => {}, // show this revision's mask + lesions in the viewer
//                                           // (after restore() and resolveConflict("theirs"));
//                                           // fetchRevisionMask() below gives its bytes
//     user: "rater1",             // part of the draft key (assignment id + user)
//     watchMs: 2000, draftThrottleMs: 2000, maxBackoffMs: 30000,
//   });
//   saver.changed();                 // after any edit; autosave debounceMs after the LAST change
//   await saver.saveNow();           // Ctrl+S, pagehide; resolves with the resulting state
//   await saver.restore(revisionId); // a new revision from an old one, parent = latest; resolves
//                                    // with the new revision (after loadRevision)
//   await saver.submit();            // saves pending work first, then submits the latest revision
//   await saver.resolveConflict("mine" | "theirs");
//        // mine: re-save the local mask with parent = the server's latest (the other tab's save
//        //       stays in the history); theirs: load the server's latest (loadRevision); the local
//        //       mask is on the server as the conflict copy (edits made after the conflict are
//        //       sent as one more conflict copy first)
//   saver.draft()                    // Promise of the IndexedDB draft for this assignment, or null
//   saver.applyDraftPrompt(container, applyFn) // the "restore unsaved changes" offer (below)
//   saver.loaded(revisionOrNull)     // the viewer now shows this revision: new baseline for change
//                                    // detection (only needed without loadRevision)
//   saver.hasUnsaved()               // true while something is not on the server (beforeunload)
//   saver.state, saver.latestRevisionId
//   saver.dispose()
//
// Construct it once the viewer shows the latest revision's mask (or the empty drawing of a new
// case): the first bitmap it sees is the saved state. Lesion-list edits (votes, notes) change no
// voxel: call changed() for them. Every voxel edit is also caught by a watcher (below), because
// NiiVue fires no event for cluster erase, click-to-segment, Otsu or slice interpolation.
//
// HOW IT SAVES
// - Change detection: changed(), plus a 64-bit content hash of getBitmap() on pointerup/keyup and
//   every watchMs; a hash different from the last one seen marks the case dirty.
// - Autosave debounceMs after the last change; one save in flight at a time; a change during a
//   save triggers another after it. A save whose mask and lesions equal the last saved ones is
//   skipped.
// - A save: gzip the NIfTI in the browser (CompressionStream), write the IndexedDB draft, POST
//   multipart {mask, parent, lesions, active_seconds} to <apiBase>/assignments/<id>/revisions/.
//   201 -> saved (the draft is deleted when it holds exactly that mask); 409 with latest_revision
//   -> conflict (the server kept our save as a conflict copy; autosave stops until
//   resolveConflict); other 409 -> locked when the assignment is submitted, else retried;
//   400/403/404/413 -> error with the server's detail, not retried (the next change tries
//   again); network error, 408, 429, 5xx -> retrying (offline when the browser says so) with
//   backoff 1, 2, 4, ... 30 s, and at once on `online`.
// - pagehide / tab hidden: saveNow(), with fetch keepalive when the upload is under 60 KB;
//   otherwise the draft written before the attempt is what survives.
import { ActivityClock } from "./activity.js";
import { deleteDraftIf, draftKey, getDraft, putDraft } from "./drafts.js";

const RETRY_STATUSES = new Set([0, 408, 429, 500, 502, 503, 504]);

/**
 * A 64-bit content hash (two FNV-1a-style 32-bit lanes over 32-bit words) of `bytes`, as a hex
 * string with the length. Any single-word change always changes it (every step is a bijection of
 * the lane for a fixed word); unrelated contents collide with probability ~2^-64.
 */
export function hashBytes(bytes) {
  if (!bytes) return null;
  const n = bytes.byteLength;
  const nWords = n >>> 2;
  const words =
    bytes.byteOffset % 4 === 0
      ? new Uint32Array(bytes.buffer, bytes.byteOffset, nWords)
      : new Uint32Array(bytes.slice(0, nWords * 4).buffer);
  let h1 = 0x811c9dc5;
  let h2 = 0x9e3779b9 ^ n;
  for (let i = 0; i < nWords; i++) {
    const w = words[i];
    h1 = Math.imul(h1 ^ w, 0x01000193);
    h2 = Math.imul(h2 ^ w, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  for (let i = nWords * 4; i < n; i++) {
    h1 = Math.imul(h1 ^ bytes[i], 0x01000193);
    h2 = Math.imul(h2 ^ bytes[i], 0x5bd1e995);
  }
  return `${(h1 >>> 0).toString(16).padStart(8, "0")}${(h2 >>> 0).toString(16).padStart(8, "0")}:${n}`;
}

/** `bytes` gzip-compressed by the browser (CompressionStream). */
export async function gzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The stored .nii.gz of a revision, as an ArrayBuffer (for NVImage + loadDrawing). */
export async function fetchRevisionMask(apiBase, revisionId) {
  const response = await fetch(`${apiBase}/revisions/${revisionId}/mask/`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`revision ${revisionId}'s mask: ${response.status} ${response.statusText}`);
  return response.arrayBuffer();
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

function messageOf(status, body) {
  return body?.detail || (status ? `the server answered ${status}` : "the server could not be reached");
}

export class CaseSaver {
  constructor({
    assignmentId,
    latestRevisionId = null,
    csrfToken,
    apiBase = "/api/v1",
    getSnapshot,
    getBitmap,
    onState = () => {},
    onSaved = () => {},
    onConflict = () => {},
    debounceMs = 3000,
    loadRevision = null,
    user = "",
    watchMs = 2000,
    draftThrottleMs = 2000,
    maxBackoffMs = 30_000,
    keepaliveMaxBytes = 60 * 1024,
    activity = null,
    target = window,
  }) {
    Object.assign(this, { assignmentId, latestRevisionId, csrfToken, apiBase, getSnapshot, getBitmap });
    Object.assign(this, { onState, onSaved, onConflict, debounceMs, loadRevision, watchMs, draftThrottleMs });
    Object.assign(this, { maxBackoffMs, keepaliveMaxBytes, target });
    this.activity = activity ?? new ActivityClock({ target });
    this.ownsActivity = !activity;
    this.key = draftKey(assignmentId, user);
    this.user = user;
    this.writer = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    this.state = "saved";
    this.detail = {};
    this.blocked = null; // "conflict" | "locked": no saves until resolved
    this.conflict = null;
    this.conflictSent = null; // {stateKey, parent} of the save that became the conflict copy
    this.dirty = false; // something changed since the last snapshot sent
    this.force = false; // save even if the content equals the last saved one
    this.savedHash = this.hashBitmap(); // baseline: what the viewer shows now is saved
    this.seenHash = this.savedHash;
    this.savedLesionsKey = null; // unknown until our first save
    this.flushing = null;
    this.again = false;
    this.backoffMs = 1000;
    this.attempt = 0;
    this.timers = { debounce: null, retry: null, draft: null, watch: null };
    this.leaving = false;
    this.disposed = false;
    this.suspended = 0; // > 0 while a revision is being loaded into the viewer

    this.listeners = [
      [target, "pointerup", () => this.check()],
      [target, "keyup", () => this.check()],
      [target, "online", () => this.retryNow()],
      [target, "offline", () => this.state === "retrying" && this.setState("offline", this.detail)],
      [target, "pagehide", () => this.leave()],
      [target, "pageshow", () => (this.leaving = false)],
      [document, "visibilitychange", () => (document.visibilityState === "hidden" ? this.leave() : (this.leaving = false))],
    ];
    for (const [t, type, fn] of this.listeners) t.addEventListener(type, fn, { capture: true });
    this.timers.watch = setInterval(() => this.check(), watchMs);
  }

  // --- public API --------------------------------------------------------------------------------

  /** Something changed (call after any edit): autosave debounceMs after the last change. */
  changed() {
    if (this.disposed) return;
    this.dirty = true;
    this.scheduleDraft();
    if (this.blocked) return; // drafts only until the conflict is resolved / while locked
    if (this.state === "saved" || this.state === "error") this.setState("dirty");
    if (this.timers.retry) return; // the pending retry sends the newest state
    clearTimeout(this.timers.debounce);
    this.timers.debounce = setTimeout(() => {
      this.timers.debounce = null;
      this.flush();
    }, this.debounceMs);
  }

  /** Save now (Ctrl+S, leaving the page). Resolves with the resulting state. */
  async saveNow({ force = false } = {}) {
    if (this.disposed) return this.state;
    this.check();
    if (force) {
      this.force = true;
      this.dirty = true;
    }
    if (this.blocked) return this.state;
    clearTimeout(this.timers.debounce);
    this.timers.debounce = null;
    if (this.timers.retry) {
      clearTimeout(this.timers.retry);
      this.timers.retry = null;
      this.dirty = true;
    }
    if (!this.dirty && !this.flushing) return this.state;
    await this.flush();
    return this.state;
  }

  /** True while some edit is not on the server (for a beforeunload warning). */
  hasUnsaved() {
    this.check();
    return this.dirty || this.flushing !== null || this.blocked === "conflict" || this.timers.retry !== null;
  }

  /**
   * Make revision `revisionId` the latest again (a new revision of kind "restore", server side).
   * Unsaved edits are saved first so that they stay in the history. Resolves with the new revision.
   */
  async restore(revisionId) {
    await this.settle();
    if (this.blocked) throw new Error(this.blocked === "locked" ? "the case is submitted" : "resolve the conflict first");
    if (this.dirty) {
      const state = await this.saveNow();
      if (state !== "saved") throw new Error(`your edits could not be saved first (${state}): ${this.detail.detail ?? ""}`);
    }
    const response = await this.post(`${this.apiBase}/revisions/${revisionId}/restore/`, {
      json: { parent: this.latestRevisionId },
    });
    const body = await readJson(response);
    if (response.status === 201) {
      this.latestRevisionId = body.id;
      await this.show(body);
      this.onSaved(body);
      return body;
    }
    if (response.status === 409 && body.latest_revision !== undefined) {
      this.enterConflict(body.latest_revision, body.conflict_revision ?? null, body.detail);
    } else if (response.status === 409 && (await this.isSubmitted())) {
      this.lock(body.detail);
    } else {
      this.setState("error", { detail: messageOf(response.status, body) });
    }
    throw new Error(messageOf(response.status, body));
  }

  /** Save pending work, then submit the latest revision. Resolves with the assignment JSON. */
  async submit() {
    if (this.blocked === "locked") throw new Error("the case is already submitted");
    // A case never saved (no lesion found) still needs one revision: save the empty mask.
    const state = await this.saveNow({ force: this.latestRevisionId === null });
    if (state !== "saved") throw new Error(`not submitted: the case is not saved (${state}) ${this.detail.detail ?? ""}`.trim());
    const response = await this.post(`${this.apiBase}/assignments/${this.assignmentId}/submit/`, {
      json: { revision: this.latestRevisionId },
    });
    const body = await readJson(response);
    if (response.ok) {
      this.lock("submitted", { submitted: true, assignment: body });
      return body;
    }
    this.setState("error", { detail: messageOf(response.status, body) });
    throw new Error(messageOf(response.status, body));
  }

  /** After a conflict: keep "mine" (save it on top of the server's latest) or take "theirs". */
  async resolveConflict(choice) {
    if (this.blocked !== "conflict") throw new Error("there is no conflict to resolve");
    const { latestRevision } = this.conflict;
    if (choice === "mine") {
      this.latestRevisionId = latestRevision;
      this.blocked = null;
      this.conflict = null;
      this.conflictSent = null;
      return this.saveNow({ force: true });
    }
    if (choice !== "theirs") throw new Error(`resolveConflict: "mine" or "theirs", not ${choice}`);
    await this.keepLocalAsConflictCopy();
    const response = await fetch(`${this.apiBase}/revisions/${latestRevision}/`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const body = await readJson(response);
    if (!response.ok) {
      this.setState("conflict", { ...this.detail, detail: messageOf(response.status, body) });
      throw new Error(messageOf(response.status, body));
    }
    this.blocked = null;
    this.conflict = null;
    this.conflictSent = null;
    this.latestRevisionId = latestRevision;
    await this.show(body);
    this.onSaved(body);
    return "saved";
  }

  /** The IndexedDB draft of this assignment (with `stale`: made from another revision), or null. */
  async draft() {
    try {
      const record = await getDraft(this.key);
      return record ? { ...record, stale: record.parent !== this.latestRevisionId } : null;
    } catch (err) {
      console.warn("drafts unavailable:", err);
      return null;
    }
  }

  /**
   * If a draft exists, show in `container` the offer to restore it; `applyFn(draft)` puts
   * draft.mask (gzip NIfTI bytes) and draft.lesions into the viewer. Restoring saves at once (a
   * new revision on top of the latest, which stays in the history); discarding deletes the draft.
   * Resolves with "none" | "applied" | "discarded".
   */
  async applyDraftPrompt(container, applyFn) {
    const draft = await this.draft();
    if (!draft) return "none";
    const box = document.createElement("div");
    box.className = "draft-prompt";
    box.setAttribute("role", "alert");
    box.dataset.testid = "draft-prompt";
    const when = new Date(draft.savedAt).toLocaleString();
    const text = document.createElement("p");
    text.textContent =
      `Unsaved changes from ${when} were kept in this browser.` +
      (draft.stale
        ? " They were made from another revision than the latest; restoring saves them as a new" +
          " revision on top of it (the latest stays in the history)."
        : "");
    const restore = document.createElement("button");
    restore.type = "button";
    restore.textContent = "Restore unsaved changes";
    restore.dataset.testid = "draft-restore";
    const discard = document.createElement("button");
    discard.type = "button";
    discard.textContent = "Discard them";
    discard.dataset.testid = "draft-discard";
    const status = document.createElement("span");
    status.className = "muted";
    box.append(text, restore, " ", discard, " ", status);
    container.append(box);
    const same = (r) => r.writer === draft.writer && r.savedAt === draft.savedAt;
    const forget = () =>
      Promise.all([deleteDraftIf(this.key, same), deleteDraftIf(`${this.key}:previous`, same)]).catch(() => {});
    return new Promise((resolve) => {
      restore.addEventListener("click", async () => {
        restore.disabled = discard.disabled = true;
        status.textContent = "restoring…";
        try {
          await applyFn(draft);
          this.dirty = true;
          const state = await this.saveNow({ force: true });
          if (state === "saved") await forget();
          box.remove();
          resolve("applied");
        } catch (err) {
          status.textContent = `could not restore: ${err.message}`;
          restore.disabled = discard.disabled = false;
        }
      });
      discard.addEventListener("click", async () => {
        await forget();
        box.remove();
        resolve("discarded");
      });
    });
  }

  /** The viewer now shows `revision` (or an empty drawing): the new saved baseline. */
  loaded(revision = undefined) {
    if (revision !== undefined) this.latestRevisionId = revision?.id ?? revision ?? null;
    this.savedHash = this.hashBitmap();
    this.seenHash = this.savedHash;
    this.savedLesionsKey = null;
    this.dirty = false;
    this.force = false;
    clearTimeout(this.timers.debounce);
    this.timers.debounce = null;
    if (!this.blocked) this.setState("saved");
  }

  dispose() {
    this.disposed = true;
    for (const id of Object.values(this.timers)) {
      clearTimeout(id);
      clearInterval(id);
    }
    for (const [t, type, fn] of this.listeners) t.removeEventListener(type, fn, { capture: true });
    if (this.ownsActivity) this.activity.dispose();
  }

  // --- change detection --------------------------------------------------------------------------

  hashBitmap() {
    try {
      return hashBytes(this.getBitmap());
    } catch {
      return null;
    }
  }

  /** Compare the live mask with the last one seen; mark dirty when it differs. */
  check() {
    if (this.disposed || this.suspended || this.blocked === "locked") return;
    const hash = this.hashBitmap();
    if (hash === null || hash === this.seenHash) return;
    if (this.seenHash === null && this.savedHash === null) {
      // The drawing appeared after construction (viewer still loading): it is the baseline.
      this.savedHash = this.seenHash = hash;
      return;
    }
    this.seenHash = hash;
    this.changed();
  }

  // --- saving ------------------------------------------------------------------------------------

  /** Run saves until nothing is pending (one in flight at a time). */
  flush() {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      try {
        do {
          this.again = false;
          await this.saveOnce();
        } while (this.again && this.dirty && !this.blocked && !this.timers.retry && !this.disposed);
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  /** Wait for the save in flight, if any. */
  async settle() {
    while (this.flushing) await this.flushing;
  }

  async saveOnce() {
    if (this.blocked || this.disposed) return;
    const hash = this.hashBitmap(); // before the snapshot: a later edit only causes another save
    this.seenHash = hash ?? this.seenHash;
    this.dirty = false;
    let snapshot;
    let mask;
    try {
      snapshot = await this.getSnapshot();
      const lesionsKey = JSON.stringify(snapshot.lesions ?? []);
      if (!this.force && hash !== null && hash === this.savedHash && lesionsKey === this.savedLesionsKey) {
        this.setState(this.dirty ? "dirty" : "saved"); // back to what is saved (e.g. undone)
        return;
      }
      this.setState("saving");
      mask = await gzip(snapshot.nifti);
    } catch (err) {
      this.dirty = true;
      this.setState("error", { detail: `could not read the mask from the viewer: ${err.message}` });
      return;
    }
    const lesions = snapshot.lesions ?? [];
    const lesionsKey = JSON.stringify(lesions);
    const parent = this.latestRevisionId;
    const stateKey = `${hash}|${hashBytes(new TextEncoder().encode(lesionsKey))}`;
    await this.writeDraft({ mask, lesions, parent, stateKey });

    const seconds = this.activity.pending();
    const form = new FormData();
    form.append("mask", new Blob([mask], { type: "application/gzip" }), "mask.nii.gz");
    form.append("parent", parent === null || parent === undefined ? "" : String(parent));
    form.append("lesions", lesionsKey);
    form.append("active_seconds", seconds.toFixed(1));
    let response;
    let body = {};
    try {
      response = await this.post(`${this.apiBase}/assignments/${this.assignmentId}/revisions/`, {
        form,
        keepalive: this.leaving && mask.byteLength < this.keepaliveMaxBytes,
      });
      body = await readJson(response);
    } catch (err) {
      this.retryLater(`the server could not be reached (${err.message})`);
      return;
    }
    const status = response.status;
    if (status === 201) {
      this.latestRevisionId = body.id;
      this.savedHash = hash;
      this.savedLesionsKey = lesionsKey;
      this.force = false;
      this.activity.consume(seconds);
      this.backoffMs = 1000;
      this.attempt = 0;
      deleteDraftIf(this.key, (r) => r.stateKey === stateKey).catch(() => {});
      this.setState(this.dirty ? "dirty" : "saved", { revision: body });
      this.onSaved(body);
    } else if (status === 409 && body.latest_revision !== undefined) {
      this.dirty = true; // our mask is on the server only as a conflict copy
      this.conflictSent = { stateKey, parent };
      this.enterConflict(body.latest_revision, body.conflict_revision ?? null, body.detail);
    } else if (status === 409 && (await this.isSubmitted())) {
      this.dirty = true;
      this.lock(body.detail);
    } else if (status === 409) {
      this.retryLater(messageOf(status, body)); // e.g. two saves at the same instant: try again
    } else if (RETRY_STATUSES.has(status) || status >= 500) {
      this.retryLater(messageOf(status, body));
    } else {
      this.dirty = true;
      this.setState("error", { detail: messageOf(status, body), status });
    }
  }

  /** Whether the server says this case is submitted (a 409 without conflict ids). */
  async isSubmitted() {
    try {
      const response = await fetch(`${this.apiBase}/assignments/${this.assignmentId}/`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      return response.ok && (await readJson(response)).status === "submitted";
    } catch {
      return false;
    }
  }

  retryLater(detail) {
    this.dirty = true;
    this.attempt += 1;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    const offline = typeof navigator !== "undefined" && navigator.onLine === false;
    this.setState(offline ? "offline" : "retrying", { detail, retryInMs: delay, attempt: this.attempt });
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => {
      this.timers.retry = null;
      this.flush();
    }, delay);
  }

  retryNow() {
    if (!this.timers.retry) return;
    clearTimeout(this.timers.retry);
    this.timers.retry = null;
    this.flush();
  }

  enterConflict(latestRevision, conflictRevision, detail) {
    this.blocked = "conflict";
    this.conflict = { latestRevision, conflictRevision };
    clearTimeout(this.timers.debounce);
    this.timers.debounce = null;
    this.setState("conflict", {
      detail: detail || "this case was saved elsewhere (another tab?) since you opened it",
      latestRevision,
      conflictRevision,
    });
    this.onConflict({ latestRevision, conflictRevision });
  }

  lock(detail, extra = {}) {
    this.blocked = "locked";
    for (const name of ["debounce", "retry"]) {
      clearTimeout(this.timers[name]);
      this.timers[name] = null;
    }
    this.setState("locked", { detail: detail || "the case is submitted", ...extra });
  }

  /**
   * Before "theirs" replaces the viewer's mask: if the rater edited after the conflict, send the
   * current state once more from the stale parent, so that the server keeps it as another
   * conflict copy (nothing drawn in this tab is lost).
   */
  async keepLocalAsConflictCopy() {
    const sent = this.conflictSent;
    if (!sent) return;
    const hash = this.hashBitmap();
    const snapshot = await this.getSnapshot();
    const lesionsKey = JSON.stringify(snapshot.lesions ?? []);
    const stateKey = `${hash}|${hashBytes(new TextEncoder().encode(lesionsKey))}`;
    if (stateKey === sent.stateKey) return;
    const form = new FormData();
    form.append("mask", new Blob([await gzip(snapshot.nifti)], { type: "application/gzip" }), "mask.nii.gz");
    form.append("parent", sent.parent === null || sent.parent === undefined ? "" : String(sent.parent));
    form.append("lesions", lesionsKey);
    form.append("active_seconds", "0");
    const response = await this.post(`${this.apiBase}/assignments/${this.assignmentId}/revisions/`, { form });
    const body = await readJson(response);
    if (!(response.status === 409 && body.conflict_revision)) {
      throw new Error(`your latest edits could not be kept as a conflict copy: ${messageOf(response.status, body)}`);
    }
  }

  /** Load a revision into the viewer (loadRevision) and take it as the saved baseline. */
  async show(revision) {
    this.suspended += 1;
    try {
      if (this.loadRevision) await this.loadRevision(revision);
    } finally {
      this.suspended -= 1;
    }
    deleteDraftIf(this.key, (r) => r.writer === this.writer).catch(() => {});
    this.loaded(revision);
  }

  post(url, { form = null, json = null, keepalive = false }) {
    const headers = { Accept: "application/json", "X-CSRFToken": this.csrfToken };
    if (json !== null) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers,
      body: json !== null ? JSON.stringify(json) : form,
      keepalive,
    });
  }

  // --- drafts and leaving ------------------------------------------------------------------------

  async writeDraft({ mask, lesions, parent, stateKey }) {
    try {
      await putDraft({
        key: this.key,
        assignmentId: this.assignmentId,
        user: this.user,
        writer: this.writer,
        mask,
        lesions,
        parent,
        savedAt: Date.now(),
        stateKey,
      });
    } catch (err) {
      console.warn("could not keep a draft in this browser:", err);
    }
  }

  /** Write a draft of the current state at most every draftThrottleMs while the rater edits. */
  scheduleDraft() {
    if (this.timers.draft || this.disposed) return;
    this.timers.draft = setTimeout(async () => {
      try {
        const hash = this.hashBitmap();
        const snapshot = await this.getSnapshot();
        const lesionsKey = JSON.stringify(snapshot.lesions ?? []);
        if (hash !== null && hash === this.savedHash && lesionsKey === this.savedLesionsKey && !this.blocked) {
          await deleteDraftIf(this.key, (r) => r.writer === this.writer); // back to the saved state
          return;
        }
        const stateKey = `${hash}|${hashBytes(new TextEncoder().encode(lesionsKey))}`;
        await this.writeDraft({
          mask: await gzip(snapshot.nifti),
          lesions: snapshot.lesions ?? [],
          parent: this.latestRevisionId,
          stateKey,
        });
      } catch (err) {
        console.warn("draft not written:", err);
      } finally {
        this.timers.draft = null;
      }
    }, this.draftThrottleMs);
  }

  leave() {
    this.leaving = true;
    this.saveNow().catch(() => {});
  }

  setState(state, detail = {}) {
    if (state === this.state && Object.keys(detail).length === 0 && Object.keys(this.detail).length === 0) return;
    this.state = state;
    this.detail = detail;
    try {
      this.onState(state, detail);
    } catch (err) {
      console.error("onState failed:", err);
    }
  }
}
