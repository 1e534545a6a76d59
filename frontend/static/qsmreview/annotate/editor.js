// The case being drawn: ONE logical mask on the T2* grid, its edit history and its lesions.
//
// Every panel is a NiiVue instance on the same grid (all sequences are resampled onto the T2*
// magnitude grid before a rater sees them), so one Uint8Array in NiiVue's bitmap order serves
// them all. An edit made in one panel is read back from that panel's drawBitmap as a diff,
// recorded for undo, and written into every other panel's drawBitmap (then refreshDrawing).
// Edits this module makes itself (erase a lesion, region grow, undo, redo) are written into
// every panel the same way.
//
// Geometry (checked in NiiVue 0.69's sources, nvimage/ImageOrientation.ts and
// niivue/core/CoordinateTransform.ts): the bitmap's dims are volumes[0].dimsRAS[1..3] (NiiVue's
// back.dims); index = i + j*nx + k*nx*ny; world mm of voxel (i, j, k) =
// volumes[0].vox2mm([i, j, k], volumes[0].matRAS); mm -> voxel: volumes[0].mm2vox(mm) (rounded).
import { EditHistory, applyChange, changeSetting, diffMasks } from "./edits.js";
import { componentAt, labelComponents, matchLesions, regionGrow } from "./components.js";

/** The T2* grid as NiiVue holds it (from the first panel's background volume). */
export class Grid {
  constructor(volume) {
    this.volume = volume;
    this.dims = volume.dimsRAS.slice(1, 4).map(Number);
    this.count = this.dims[0] * this.dims[1] * this.dims[2];
    const m = volume.matRAS; // 4x4, row-major (NiiVue transposes it before use)
    const det =
      m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8]);
    /** Volume of one voxel in mm^3. */
    this.voxelVolume = Math.abs(det);
    /** Voxel edge lengths along the bitmap's axes, mm. */
    this.voxelMm = [0, 1, 2].map((c) => Math.hypot(m[c], m[4 + c], m[8 + c]));
  }

  ijk(index) {
    const [nx, ny] = this.dims;
    return [index % nx, Math.floor(index / nx) % ny, Math.floor(index / (nx * ny))];
  }

  index([i, j, k]) {
    const [nx, ny, nz] = this.dims;
    if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return -1;
    return i + j * nx + k * nx * ny;
  }

  /** World (scanner RAS) mm of a voxel (fractional voxels allowed). */
  mm(ijk) {
    return Array.from(this.volume.vox2mm(ijk, this.volume.matRAS)).slice(0, 3);
  }

  /** The bitmap index of the voxel containing world point ``mm``, or -1 outside the grid. */
  indexOfMm(mm) {
    return this.index(Array.from(this.volume.mm2vox(mm)).map((v) => Math.round(v)));
  }
}

/** Lesion volume below which a lesion is flagged: a sphere of the minimum diameter (mm^3). */
export function minimumVolume(diameterMm) {
  return (Math.PI / 6) * diameterMm ** 3;
}

export class CaseEditor {
  /**
   * @param {Grid} grid
   * @param {object} options
   * @param {number} options.minDiameterMm - the study's minimum lesion diameter
   * @param {(change: object, source: object|null) => void} options.onChange - after every edit:
   *   write ``change`` into every panel but ``source`` (the panel it was read from)
   * @param {() => void} [options.onEdited] - after every edit, once the lesions are recomputed
   * @param {number} [options.firstNewNumber=1] - the number a new lesion gets at the least: the
   *   case's ``next_lesion_number`` (1 + the largest number any of its revisions used), so that a
   *   lesion deleted in an older revision never lends its number to a new one
   */
  constructor(grid, { minDiameterMm, onChange, onEdited = () => {}, firstNewNumber = 1 }) {
    this.grid = grid;
    this.numberFloor = Math.max(1, Number(firstNewNumber) || 1);
    this.mask = new Uint8Array(grid.count);
    this.history = new EditHistory();
    this.minVolume = minimumVolume(minDiameterMm);
    this.onChange = onChange;
    this.onEdited = onEdited;
    this.live = [];
    this.graveyard = new Map();
    this.nextNumber = 1;
  }

  /**
   * Take ``bitmap`` as the mask (a loaded revision); ``lesions`` its server table. Without a
   * table (bytes alone, e.g. a mask loaded from a file) the lesions shown so far keep their
   * numbers and votes where they overlap, as after an edit.
   */
  reset(bitmap, lesions = []) {
    this.mask.set(bitmap);
    this.history.clear();
    if (!lesions.length && this.live.length) {
      this.recompute();
      return;
    }
    this.live = [];
    this.graveyard = new Map();
    const floor = this.numberFloor;
    this.nextNumber = Math.max(floor, 1 + Math.max(0, ...lesions.map((l) => l.number || 0)));
    this.recompute();
    this.adopt(lesions);
    // Labelling before adopting handed out provisional numbers: start again after what is kept.
    this.nextNumber = Math.max(floor, 1 + Math.max(0, ...this.live.map((l) => l.number)));
    this.numberFloor = floor;
  }

  /** A panel's drawBitmap after a NiiVue tool ran on it: record the difference. */
  commitFrom(bitmap, source) {
    const change = diffMasks(this.mask, bitmap);
    if (!change.indices.length) return false;
    this.record(change, source);
    return true;
  }

  record(change, source = null) {
    applyChange(this.mask, change, true);
    this.history.push(change);
    this.changed(change, source);
  }

  changed(change, source) {
    this.onChange(change, source);
    this.recompute();
    this.onEdited();
  }

  undo() {
    const change = this.history.undo(this.mask);
    if (change) this.changed(change, null);
    return Boolean(change);
  }

  redo() {
    const change = this.history.redo(this.mask);
    if (change) this.changed(change, null);
    return Boolean(change);
  }

  /** Set voxels (bitmap indices) to ``value`` as one undoable edit. */
  setVoxels(indices, value = 1) {
    const change = changeSetting(this.mask, indices, value);
    if (!change.indices.length) return false;
    this.record(change);
    return true;
  }

  /** Erase the whole 6-connected lesion containing bitmap voxel ``index``. */
  eraseLesionAt(index) {
    return this.setVoxels(componentAt(this.mask, this.grid.dims, index), 0);
  }

  /**
   * Grow a region from ``index`` on ``values`` (a panel's intensities in bitmap order) and add
   * it to the mask: voxels within ``tolerance`` of the seed's value, within ``radiusMm``.
   */
  growAt(index, values, { tolerance, radiusMm }) {
    const seed = values[index];
    const grown = regionGrow(values, this.grid.dims, index, {
      low: seed - tolerance,
      high: seed + tolerance,
      radiusMm,
      voxelMm: this.grid.voxelMm,
    });
    return this.setVoxels(grown, 1);
  }

  recompute() {
    const result = matchLesions(labelComponents(this.mask, this.grid.dims), this.live, this.graveyard, this.nextNumber);
    this.live = result.lesions;
    this.graveyard = result.graveyard;
    this.nextNumber = result.nextNumber;
    for (const lesion of this.live) this.measure(lesion);
  }

  measure(lesion) {
    const g = this.grid;
    const n = lesion.voxels.length;
    let si = 0;
    let sj = 0;
    let sk = 0;
    for (const v of lesion.voxels) {
      const [i, j, k] = g.ijk(v);
      si += i;
      sj += j;
      sk += k;
    }
    const c = [si / n, sj / n, sk / n];
    let best = lesion.voxels[0];
    let bestD = Infinity;
    for (const v of lesion.voxels) {
      const [i, j, k] = g.ijk(v);
      const d = (i - c[0]) ** 2 + (j - c[1]) ** 2 + (k - c[2]) ** 2;
      if (d < bestD) [best, bestD] = [v, d];
    }
    lesion.count = n;
    lesion.volumeMm3 = n * g.voxelVolume;
    lesion.centroidMm = g.mm(c);
    lesion.anchorIndex = best;
    lesion.anchorMm = g.mm(g.ijk(best));
    lesion.belowMin = lesion.volumeMm3 < this.minVolume;
  }

  /** The lesions, sorted by number. */
  lesions() {
    return this.live;
  }

  lesion(number) {
    return this.live.find((l) => l.number === number) || null;
  }

  /** Change a lesion's vote, confidence or note; answering a merge/split question clears it. */
  setVote(number, fields) {
    const lesion = this.lesion(number);
    if (!lesion) return false;
    Object.assign(lesion, fields);
    return true;
  }

  /** Apply one option of a pending merge/split question (``option`` null: keep no vote). */
  resolve(number, option) {
    const lesion = this.lesion(number);
    if (!lesion) return false;
    if (option) Object.assign(lesion, { vote: option.vote, confidence: option.confidence, note: option.note });
    else Object.assign(lesion, { vote: "", confidence: null, note: "" });
    lesion.pending = null;
    return true;
  }

  /**
   * Take the server's lesion table (after a save or on load: it is authoritative): each server
   * lesion's anchor names the component that carries its number and vote.
   */
  adopt(serverLesions) {
    if (!serverLesions?.length) return;
    const byVoxel = new Map();
    this.live.forEach((lesion, i) => {
      for (const v of lesion.voxels) byVoxel.set(v, i);
    });
    const numbered = new Map();
    for (const s of serverLesions) {
      const anchor = s.anchor_mm || s.centroid_mm;
      const idx = anchor ? this.grid.indexOfMm(anchor) : -1;
      const i = byVoxel.get(idx);
      if (i === undefined || numbered.has(i)) continue;
      numbered.set(i, s);
    }
    const used = new Set([...numbered.values()].map((s) => s.number));
    this.live.forEach((lesion, i) => {
      const s = numbered.get(i);
      if (s) {
        Object.assign(lesion, {
          number: s.number,
          vote: s.vote || "",
          confidence: s.confidence ?? null,
          note: s.note || "",
          pending: s.number === lesion.number ? lesion.pending : null,
        });
      } else if (used.has(lesion.number)) {
        lesion.number = this.nextNumber++; // the server gave this number to another component
      }
    });
    for (const number of used) this.graveyard.delete(number);
    const top = Math.max(0, ...serverLesions.map((s) => s.number || 0), ...this.live.map((l) => l.number));
    this.nextNumber = Math.max(this.nextNumber, top + 1);
    this.numberFloor = Math.max(this.numberFloor, this.nextNumber);
    this.live.sort((a, b) => a.number - b.number);
  }

  /** The lesion entries a save sends (contract: number, anchor_mm, vote, confidence, note). */
  lesionPayload() {
    return this.live.map((l) => ({
      number: l.number,
      anchor_mm: l.anchorMm.map((v) => Math.round(v * 1e4) / 1e4),
      vote: l.vote || "",
      confidence: l.confidence ?? null,
      note: l.note || "",
    }));
  }
}
