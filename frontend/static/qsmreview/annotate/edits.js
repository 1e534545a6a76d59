// The rater's mask edits as diffs, and the undo/redo history built on them (no DOM, no NiiVue).
//
// A change is {indices: Int32Array, before: Uint8Array, after: Uint8Array}: the voxels (indices
// into the mask, in NiiVue's bitmap order) whose value changed, with their old and new values.
// A pen stroke on a 384 x 384 x 90 mask changes a few hundred voxels: storing diffs instead of
// 13 MB snapshots keeps hundreds of undo steps in a few kilobytes. NiiVue's own undo (8 whole
// snapshots in a ring that wraps round, no redo) is not used.

/**
 * The voxels where ``after`` differs from ``before`` (both Uint8Array of one length).
 * Compares 4 voxels at a time where the buffers allow it (an empty mask diff costs ~5 ms for
 * 13 M voxels).
 *
 * @returns {{indices: Int32Array, before: Uint8Array, after: Uint8Array}}
 */
export function diffMasks(before, after) {
  if (before.length !== after.length) throw new Error("masks of different sizes");
  const n = before.length;
  const found = [];
  let start = 0;
  if (before.byteOffset % 4 === 0 && after.byteOffset % 4 === 0) {
    const words = n >> 2;
    const a = new Uint32Array(before.buffer, before.byteOffset, words);
    const b = new Uint32Array(after.buffer, after.byteOffset, words);
    for (let w = 0; w < words; w++) {
      if (a[w] !== b[w]) {
        const base = w << 2;
        for (let i = base; i < base + 4; i++) if (before[i] !== after[i]) found.push(i);
      }
    }
    start = words << 2;
  }
  for (let i = start; i < n; i++) if (before[i] !== after[i]) found.push(i);
  const indices = Int32Array.from(found);
  const b0 = new Uint8Array(indices.length);
  const a0 = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    b0[k] = before[indices[k]];
    a0[k] = after[indices[k]];
  }
  return { indices, before: b0, after: a0 };
}

/** A change that sets ``indices`` of ``mask`` to ``value`` (only voxels that differ). */
export function changeSetting(mask, indices, value) {
  const keep = [];
  for (const i of indices) if (mask[i] !== value) keep.push(i);
  const idx = Int32Array.from(keep);
  const before = new Uint8Array(idx.length);
  for (let k = 0; k < idx.length; k++) before[k] = mask[idx[k]];
  return { indices: idx, before, after: new Uint8Array(idx.length).fill(value) };
}

/** Write a change into ``target`` (forward: its new values; backward: its old ones). */
export function applyChange(target, change, forward = true) {
  const values = forward ? change.after : change.before;
  const { indices } = change;
  for (let k = 0; k < indices.length; k++) target[indices[k]] = values[k];
}

/** The inverse of a change. */
export function invertChange(change) {
  return { indices: change.indices, before: change.after, after: change.before };
}

/** Linear undo/redo over changes; a new change after undos drops the redo branch. */
export class EditHistory {
  /** @param {number} [limit=500] - oldest steps are forgotten beyond this many */
  constructor(limit = 500) {
    this.limit = limit;
    this.done = [];
    this.undone = [];
  }

  push(change) {
    if (!change.indices.length) return;
    this.done.push(change);
    if (this.done.length > this.limit) this.done.shift();
    this.undone = [];
  }

  get canUndo() {
    return this.done.length > 0;
  }

  get canRedo() {
    return this.undone.length > 0;
  }

  /** Undo the last change on ``mask``; returns the change as applied (to copy elsewhere), or null. */
  undo(mask) {
    const change = this.done.pop();
    if (!change) return null;
    applyChange(mask, change, false);
    this.undone.push(change);
    return invertChange(change);
  }

  /** Redo the last undone change on ``mask``; returns it, or null. */
  redo(mask) {
    const change = this.undone.pop();
    if (!change) return null;
    applyChange(mask, change, true);
    this.done.push(change);
    return change;
  }

  clear() {
    this.done = [];
    this.undone = [];
  }
}
