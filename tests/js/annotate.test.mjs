// Unit tests of the workspace's pure modules (run by tests/annotations/test_workspace_js.py
// with `node --test`; no browser).
import assert from "node:assert/strict";
import { test } from "node:test";

import { EditHistory, applyChange, changeSetting, diffMasks } from "../../frontend/static/qsmreview/annotate/edits.js";
import { componentAt, labelComponents, matchLesions, regionGrow } from "../../frontend/static/qsmreview/annotate/components.js";

const DIMS = [6, 5, 4];
const N = 6 * 5 * 4;
const at = (i, j, k) => i + j * 6 + k * 30;

function maskWith(points) {
  const m = new Uint8Array(N);
  for (const p of points) m[at(...p)] = 1;
  return m;
}

test("diffMasks finds exactly the changed voxels, also in the unaligned tail", () => {
  const a = new Uint8Array(N + 3);
  const b = a.slice();
  b[5] = 1;
  b[N + 2] = 1;
  const d = diffMasks(a, b);
  assert.deepEqual([...d.indices], [5, N + 2]);
  assert.deepEqual([...d.before], [0, 0]);
  assert.deepEqual([...d.after], [1, 1]);
});

test("undo and redo restore the mask through diffs; a new edit drops the redo branch", () => {
  const mask = new Uint8Array(N);
  const h = new EditHistory();
  const c1 = changeSetting(mask, [1, 2, 3], 1);
  applyChange(mask, c1);
  h.push(c1);
  const c2 = changeSetting(mask, [3, 4], 0);
  applyChange(mask, c2);
  h.push(c2);
  assert.deepEqual([...mask.slice(0, 6)], [0, 1, 1, 0, 0, 0]);
  h.undo(mask);
  assert.deepEqual([...mask.slice(0, 6)], [0, 1, 1, 1, 0, 0]);
  h.undo(mask);
  assert.equal(mask.reduce((s, v) => s + v, 0), 0);
  assert.equal(h.undo(mask), null);
  h.redo(mask);
  assert.deepEqual([...mask.slice(0, 6)], [0, 1, 1, 1, 0, 0]);
  h.push(changeSetting(mask, [0], 1));
  assert.equal(h.canRedo, false);
});

test("components are 6-connected: an edge contact does not join two lesions", () => {
  const mask = maskWith([[0, 0, 0], [1, 0, 0], [2, 1, 0], [2, 1, 1], [5, 4, 3]]);
  const comps = labelComponents(mask, DIMS).map((c) => [...c].sort((a, b) => a - b));
  assert.equal(comps.length, 3);
  assert.deepEqual(comps[0], [at(0, 0, 0), at(1, 0, 0)]);
  assert.deepEqual(comps[1], [at(2, 1, 0), at(2, 1, 1)]);
  // no wrap-around from the end of a row to the start of the next
  const wrap = maskWith([[5, 0, 0], [0, 1, 0]]);
  assert.equal(labelComponents(wrap, DIMS).length, 2);
  assert.equal(componentAt(mask, DIMS, at(2, 1, 1)).length, 2);
  assert.equal(componentAt(mask, DIMS, at(3, 3, 3)).length, 0);
});

test("region growing stays within the intensity range and the radius", () => {
  const values = new Float32Array(N);
  for (let i = 0; i < 4; i++) values[at(i, 2, 1)] = 100; // a bright row of 4 voxels
  values[at(2, 3, 1)] = 100;
  const grown = regionGrow(values, DIMS, at(0, 2, 1), { low: 90, high: 110, radiusMm: 2.1, voxelMm: [1, 1, 1] });
  assert.deepEqual([...grown].sort((a, b) => a - b), [at(0, 2, 1), at(1, 2, 1), at(2, 2, 1)]);
  assert.equal(regionGrow(values, DIMS, at(5, 0, 0), { low: 90, high: 110, radiusMm: 5, voxelMm: [1, 1, 1] }).length, 0);
});

function lesion(number, points, vote = "") {
  return { number, voxels: Int32Array.from(points.map((p) => at(...p))), vote, confidence: 3, note: "" };
}

test("numbers stay with their lesion, new lesions get the next number, numbers are never reused", () => {
  const live = [lesion(1, [[0, 0, 0]], "wm"), lesion(2, [[4, 4, 3]], "cortical")];
  const mask = maskWith([[0, 0, 0], [1, 0, 0], [2, 2, 2]]); // lesion 1 grew, 2 erased, one new
  const r = matchLesions(labelComponents(mask, DIMS), live, new Map(), 3);
  assert.deepEqual(r.lesions.map((l) => [l.number, l.vote]), [[1, "wm"], [3, ""]]);
  assert.equal(r.nextNumber, 4);
  assert.ok(r.graveyard.has(2));
  // drawing lesion 2 back (an undo) revives its number and vote
  const again = maskWith([[0, 0, 0], [1, 0, 0], [2, 2, 2], [4, 4, 3]]);
  const r2 = matchLesions(labelComponents(again, DIMS), r.lesions, r.graveyard, r.nextNumber);
  assert.deepEqual(r2.lesions.map((l) => [l.number, l.vote]), [[1, "wm"], [2, "cortical"], [3, ""]]);
  assert.equal(r2.graveyard.size, 0);
});

test("a merge and a split are flagged with the votes to choose from", () => {
  const live = [lesion(1, [[0, 0, 0], [1, 0, 0]], "wm"), lesion(2, [[3, 0, 0]], "cortical")];
  const merged = maskWith([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]]);
  const r = matchLesions(labelComponents(merged, DIMS), live, new Map(), 3);
  assert.equal(r.lesions.length, 1);
  assert.equal(r.lesions[0].number, 1);
  assert.equal(r.lesions[0].pending.kind, "merge");
  assert.deepEqual(r.lesions[0].pending.options.map((o) => o.vote), ["wm", "cortical"]);
  // undoing the merge gives lesion 2 back with its vote
  const undone = maskWith([[0, 0, 0], [1, 0, 0], [3, 0, 0]]);
  const r2 = matchLesions(labelComponents(undone, DIMS), r.lesions, r.graveyard, r.nextNumber);
  assert.deepEqual(r2.lesions.map((l) => [l.number, l.vote]), [[1, "wm"], [2, "cortical"]]);

  const big = [lesion(1, [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0]], "mixed")];
  const split = maskWith([[0, 0, 0], [1, 0, 0], [2, 0, 0], [4, 0, 0]]);
  const r3 = matchLesions(labelComponents(split, DIMS), big, new Map(), 2);
  assert.deepEqual(r3.lesions.map((l) => [l.number, l.vote, l.pending?.kind ?? null]), [[1, "mixed", null], [2, "", "split"]]);
  assert.equal(r3.lesions[1].pending.options[0].number, 1);
});

test("a new lesion never takes a number an older revision of the case used (next_lesion_number)", async () => {
  const { CaseEditor } = await import("../../frontend/static/qsmreview/annotate/editor.js");
  // A 6 x 5 x 4 grid of 1 mm voxels at the origin; vox2mm is only needed for anchors.
  const volume = {
    dimsRAS: [3, 6, 5, 4],
    matRAS: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
    vox2mm: (ijk) => ijk,
    mm2vox: (mm) => mm,
  };
  const { Grid } = await import("../../frontend/static/qsmreview/annotate/editor.js");
  const editor = new CaseEditor(new Grid(volume), { minDiameterMm: 0, onChange: () => {}, firstNewNumber: 7 });
  // The latest revision holds lesion 2 only; lesions 3..6 were drawn and deleted in older ones.
  editor.reset(maskWith([[0, 0, 0]]), [{ number: 2, anchor_mm: [0, 0, 0], vote: "wm", confidence: 3, note: "" }]);
  editor.setVoxels([at(4, 3, 2)]);
  const numbers = editor.lesions().map((l) => l.number).sort((a, b) => a - b);
  assert.deepEqual(numbers, [2, 7]);
});

test("a mask loaded without its lesion table keeps the numbers of the lesions it overlaps", async () => {
  const { CaseEditor, Grid } = await import("../../frontend/static/qsmreview/annotate/editor.js");
  const volume = {
    dimsRAS: [3, 6, 5, 4],
    matRAS: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
    vox2mm: (ijk) => ijk,
    mm2vox: (mm) => mm,
  };
  const editor = new CaseEditor(new Grid(volume), { minDiameterMm: 0, onChange: () => {}, firstNewNumber: 4 });
  editor.reset(maskWith([[0, 0, 0], [5, 4, 3]]), [
    { number: 1, anchor_mm: [0, 0, 0], vote: "wm", confidence: 2, note: "" },
    { number: 3, anchor_mm: [5, 4, 3], vote: "mixed", confidence: 4, note: "" },
  ]);
  editor.reset(maskWith([[0, 0, 0], [0, 1, 0], [5, 4, 3], [3, 2, 1]]));
  const shown = editor.lesions().map((l) => [l.number, l.vote]).sort((a, b) => a[0] - b[0]);
  assert.deepEqual(shown, [[1, "wm"], [3, "mixed"], [4, ""]]);
});
