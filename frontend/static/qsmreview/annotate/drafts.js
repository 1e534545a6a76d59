// Unsaved work kept in the browser (IndexedDB), so that a closed tab, a crash or a server that
// stays unreachable loses no stroke: the saver writes the gzip mask, the lesion entries and the
// revision it was made from before every save attempt and while the rater edits, and deletes the
// draft once the server has stored exactly that mask.
//
// One draft per assignment and user (key "<assignment id>:<user>"). A draft written by an earlier
// page load is never overwritten by a new one: the first write of a page moves it to
// "<key>:previous" in the same transaction (a rater who draws before answering the "restore
// unsaved changes" offer keeps both).
//
// Record: {key, assignmentId, user, writer, mask (Uint8Array, gzip NIfTI), lesions (array),
//          parent (revision id or null), savedAt (ms since epoch), stateKey (string)}

const DB_NAME = "qsmreview-drafts";
const STORE = "drafts";
const VERSION = 1;

let opening = null;

/** The database (opened once per page). Rejects where IndexedDB is unavailable. */
export function openDrafts() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      if (typeof indexedDB === "undefined") {
        reject(new Error("IndexedDB is not available in this browser"));
        return;
      }
      const request = indexedDB.open(DB_NAME, VERSION);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error("the drafts database is blocked by another tab"));
    });
    opening.catch(() => (opening = null));
  }
  return opening;
}

/** The key of one assignment's draft for one user. */
export function draftKey(assignmentId, user = "") {
  return `${assignmentId}:${user}`;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("draft transaction aborted"));
  });
}

function result(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** The draft stored under `key`, or null. */
export async function getDraft(key) {
  const db = await openDrafts();
  const tx = db.transaction(STORE, "readonly");
  const found = await result(tx.objectStore(STORE).get(key));
  return found ?? null;
}

/**
 * Store `record` under `record.key`. An existing draft from another writer (an earlier page load)
 * is first moved to "<key>:previous".
 */
export async function putDraft(record) {
  const db = await openDrafts();
  const tx = db.transaction(STORE, "readwrite");
  const store = tx.objectStore(STORE);
  const existing = await result(store.get(record.key));
  if (existing && existing.writer !== record.writer) store.put(existing, `${record.key}:previous`);
  store.put(record, record.key);
  await done(tx);
}

/**
 * Delete the draft under `key` when `predicate(draft)` holds, in one transaction (a draft written
 * meanwhile by a later edit is kept). Resolves true when a draft was deleted.
 */
export async function deleteDraftIf(key, predicate = () => true) {
  const db = await openDrafts();
  const tx = db.transaction(STORE, "readwrite");
  const store = tx.objectStore(STORE);
  const existing = await result(store.get(key));
  let deleted = false;
  if (existing && predicate(existing)) {
    store.delete(key);
    deleted = true;
  }
  await done(tx);
  return deleted;
}
