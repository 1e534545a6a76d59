// Lesions as 6-connected components of the mask, with numbers that stay put while the rater
// edits (no DOM, no NiiVue).
//
// Connectivity is 6 (faces), as on the server (scipy generate_binary_structure(3, 1)), in
// NiiVue's cluster erase and in the MSSEG/anima rule. Voxel indices are into the mask in
// NiiVue's bitmap order: index = i + j*nx + k*nx*ny over dims = [nx, ny, nz]
// (volumes[0].dimsRAS[1..3]).

let scratch = null; // a reusable visited buffer (13 MB for 384 x 384 x 90): reset after each use

function visitedBuffer(n) {
  if (!scratch || scratch.length !== n) scratch = new Uint8Array(n);
  return scratch;
}

/** Flood the 6-connected set from ``seed`` of voxels for which ``accept(index)`` holds. */
function flood(dims, seed, accept, seen) {
  const [nx, ny, nz] = dims;
  const nxy = nx * ny;
  const out = [seed];
  seen[seed] = 1;
  for (let head = 0; head < out.length; head++) {
    const v = out[head];
    const x = v % nx;
    const y = ((v / nx) | 0) % ny;
    const z = (v / nxy) | 0;
    if (x > 0 && !seen[v - 1] && accept(v - 1)) { seen[v - 1] = 1; out.push(v - 1); }
    if (x < nx - 1 && !seen[v + 1] && accept(v + 1)) { seen[v + 1] = 1; out.push(v + 1); }
    if (y > 0 && !seen[v - nx] && accept(v - nx)) { seen[v - nx] = 1; out.push(v - nx); }
    if (y < ny - 1 && !seen[v + nx] && accept(v + nx)) { seen[v + nx] = 1; out.push(v + nx); }
    if (z > 0 && !seen[v - nxy] && accept(v - nxy)) { seen[v - nxy] = 1; out.push(v - nxy); }
    if (z < nz - 1 && !seen[v + nxy] && accept(v + nxy)) { seen[v + nxy] = 1; out.push(v + nxy); }
  }
  return out;
}

function resetSeen(seen, lists) {
  for (const list of lists) for (const v of list) seen[v] = 0;
}

/** Indices of the non-zero voxels of ``mask``, skipping empty words 4 voxels at a time. */
export function nonZeroIndices(mask) {
  const found = [];
  const n = mask.length;
  let start = 0;
  if (mask.byteOffset % 4 === 0) {
    const words = n >> 2;
    const w32 = new Uint32Array(mask.buffer, mask.byteOffset, words);
    for (let w = 0; w < words; w++) {
      if (w32[w] !== 0) {
        const base = w << 2;
        for (let i = base; i < base + 4; i++) if (mask[i]) found.push(i);
      }
    }
    start = words << 2;
  }
  for (let i = start; i < n; i++) if (mask[i]) found.push(i);
  return found;
}

/**
 * The 6-connected components of the non-zero voxels of ``mask``.
 *
 * @param {Uint8Array} mask - nx*ny*nz voxels
 * @param {number[]} dims - [nx, ny, nz]
 * @returns {Int32Array[]} one array of voxel indices per component, in order of first voxel
 */
export function labelComponents(mask, dims) {
  const seen = visitedBuffer(mask.length);
  const comps = [];
  for (const v of nonZeroIndices(mask)) {
    if (seen[v]) continue;
    comps.push(flood(dims, v, (i) => mask[i] !== 0, seen));
  }
  resetSeen(seen, comps);
  return comps.map((c) => Int32Array.from(c));
}

/** The component of ``mask`` containing voxel ``seed`` (empty if the voxel is not set). */
export function componentAt(mask, dims, seed) {
  if (!mask[seed]) return new Int32Array(0);
  const seen = visitedBuffer(mask.length);
  const comp = flood(dims, seed, (i) => mask[i] !== 0, seen);
  resetSeen(seen, [comp]);
  return Int32Array.from(comp);
}

/**
 * Region growing from a click: the 6-connected voxels around ``seed`` whose intensity lies in
 * [low, high], no farther than ``radiusMm`` from the seed (per-axis voxel sizes ``voxelMm``).
 *
 * @param {ArrayLike<number>} values - intensities in the mask's (bitmap) order
 * @param {number[]} dims - [nx, ny, nz]
 * @param {number} seed - voxel index
 * @param {{low: number, high: number, radiusMm: number, voxelMm: number[]}} options
 * @returns {Int32Array} the grown voxels (the seed first; empty if the seed is out of range)
 */
export function regionGrow(values, dims, seed, { low, high, radiusMm, voxelMm }) {
  const [nx, ny] = dims;
  const nxy = nx * ny;
  const sx = seed % nx;
  const sy = ((seed / nx) | 0) % ny;
  const sz = (seed / nxy) | 0;
  const [dx, dy, dz] = voxelMm;
  const r2 = radiusMm * radiusMm;
  const inRange = (v) => values[v] >= low && values[v] <= high;
  if (!inRange(seed)) return new Int32Array(0);
  const near = (v) => {
    const x = ((v % nx) - sx) * dx;
    const y = ((((v / nx) | 0) % ny) - sy) * dy;
    const z = (((v / nxy) | 0) - sz) * dz;
    return x * x + y * y + z * z <= r2;
  };
  const seen = visitedBuffer(values.length);
  const grown = flood(dims, seed, (v) => inRange(v) && near(v), seen);
  resetSeen(seen, [grown]);
  return Int32Array.from(grown);
}

function overlapCounts(comp, owner) {
  const counts = new Map();
  for (const v of comp) {
    const n = owner.get(v);
    if (n !== undefined) counts.set(n, (counts.get(n) || 0) + 1);
  }
  return counts;
}

function ownerMap(lesions) {
  const owner = new Map();
  for (const lesion of lesions) for (const v of lesion.voxels) owner.set(v, lesion.number);
  return owner;
}

function voteOf(lesion) {
  return { number: lesion.number, vote: lesion.vote || "", confidence: lesion.confidence ?? null, note: lesion.note || "" };
}

/**
 * Give the mask's components the numbers of the lesions they continue.
 *
 * Each component is matched to the previous lesions ("live") and to lesions removed earlier in
 * this session ("graveyard", so that undoing an erase brings the number and vote back), by the
 * voxel overlap's Jaccard index, best pairs first, live before graveyard on ties. A component
 * matching nothing gets ``nextNumber`` (then +1): numbers are never reused. Votes follow their
 * number. A component that overlaps two or more live lesions is a **merge** and a component that
 * took a new number while overlapping a live lesion given to another component is a **split**:
 * both carry ``pending`` ({kind, options: [{number, vote, confidence, note}]}) so the rater is
 * asked which vote applies; a pending question stays with its lesion until answered.
 *
 * @param {Int32Array[]} components - from labelComponents
 * @param {object[]} live - previous lesions {number, voxels, vote, confidence, note, pending?}
 * @param {Map<number, object>} graveyard - removed lesions by number (not modified)
 * @param {number} nextNumber - the number a new lesion gets
 * @returns {{lesions: object[], graveyard: Map<number, object>, nextNumber: number}} lesions
 *   sorted by number
 */
export function matchLesions(components, live, graveyard, nextNumber) {
  const liveOwner = ownerMap(live);
  const graveOwner = ownerMap(graveyard.values());
  const liveByNumber = new Map(live.map((l) => [l.number, l]));
  const candidates = [];
  const liveOverlaps = components.map((comp) => overlapCounts(comp, liveOwner));
  components.forEach((comp, c) => {
    for (const [number, overlap] of liveOverlaps[c]) {
      const size = liveByNumber.get(number).voxels.length;
      candidates.push({ c, number, score: overlap / (comp.length + size - overlap), live: true });
    }
    for (const [number, overlap] of overlapCounts(comp, graveOwner)) {
      if (liveByNumber.has(number)) continue;
      const size = graveyard.get(number).voxels.length;
      candidates.push({ c, number, score: overlap / (comp.length + size - overlap), live: false });
    }
  });
  candidates.sort((a, b) => b.score - a.score || Number(b.live) - Number(a.live) || a.number - b.number);
  const numberOf = new Array(components.length).fill(null);
  const sourceOf = new Array(components.length).fill(null);
  const taken = new Set();
  for (const cand of candidates) {
    if (numberOf[cand.c] !== null || taken.has(cand.number)) continue;
    numberOf[cand.c] = cand.number;
    sourceOf[cand.c] = cand.live ? liveByNumber.get(cand.number) : graveyard.get(cand.number);
    taken.add(cand.number);
  }
  const lesions = components.map((voxels, c) => {
    let number = numberOf[c];
    const source = sourceOf[c];
    if (number === null) number = nextNumber++;
    const lesion = {
      number,
      voxels,
      vote: source?.vote || "",
      confidence: source?.confidence ?? null,
      note: source?.note || "",
      pending: source?.pending || null,
    };
    const overlapped = [...liveOverlaps[c].keys()].sort((a, b) => a - b);
    if (overlapped.length > 1) {
      lesion.pending = { kind: "merge", options: overlapped.map((n) => voteOf(liveByNumber.get(n))) };
    } else if (!source && overlapped.length === 1) {
      lesion.pending = { kind: "split", options: [voteOf(liveByNumber.get(overlapped[0]))] };
    }
    return lesion;
  });
  const kept = new Map(graveyard);
  for (const lesion of lesions) kept.delete(lesion.number);
  for (const old of live) if (!taken.has(old.number)) kept.set(old.number, { ...old, pending: null });
  lesions.sort((a, b) => a.number - b.number);
  return { lesions, graveyard: kept, nextNumber };
}
