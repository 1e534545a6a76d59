// The lesion list beside the panels: number, volume, centroid, below-minimum badge, a click to
// jump there, the class vote, confidence and note, and the merge/split question when an edit
// joined or cut lesions.
import { escapeHtml } from "../html.js";

export const LESION_CLASSES = [
  ["cortical", "cortical"],
  ["wm", "white matter"],
  ["mixed", "mixed"],
];

function fmt(v, digits = 1) {
  return Number.isFinite(v) ? v.toFixed(digits) : "–";
}

function describe(option) {
  const vote = LESION_CLASSES.find(([value]) => value === option.vote)?.[1] || "no class";
  return `#${option.number}: ${vote}${option.confidence ? `, confidence ${option.confidence}` : ""}`;
}

/**
 * Render the lesions into ``list`` (an <ol>). Callbacks: onJump(lesion), onVote(number, fields),
 * onResolve(number, option|null), onFocus(number).
 */
export function renderLesionList(list, lesions, { readOnly, current, onJump, onVote, onResolve, onFocus }) {
  list.textContent = "";
  for (const lesion of lesions) {
    const n = lesion.number;
    const li = document.createElement("li");
    li.className = "lesion";
    li.dataset.number = String(n);
    li.setAttribute("data-testid", `lesion-${n}`);
    li.dataset.belowMin = lesion.belowMin ? "1" : "0";
    if (n === current) li.classList.add("current");
    const classOptions = ['<option value="">class…</option>']
      .concat(LESION_CLASSES.map(([v, label]) => `<option value="${v}"${lesion.vote === v ? " selected" : ""}>${label}</option>`))
      .join("");
    const confOptions = ['<option value="">conf.</option>']
      .concat([1, 2, 3, 4, 5].map((c) => `<option value="${c}"${lesion.confidence === c ? " selected" : ""}>${c}</option>`))
      .join("");
    const disabled = readOnly ? " disabled" : "";
    li.innerHTML = `
      <div class="lesion-head">
        <button type="button" class="jump" data-testid="jump-${n}" title="Show this lesion (crosshair on one of its voxels)">#${n}</button>
        <span class="volume" data-testid="volume-${n}">${fmt(lesion.volumeMm3)} mm³</span>
        ${lesion.belowMin ? '<span class="badge" data-testid="below-min-' + n + '" title="Smaller than a sphere of the study\'s minimum lesion diameter">below minimum size</span>' : ""}
        <span class="centroid muted small" title="centroid, world mm">(${lesion.centroidMm.map((v) => fmt(v)).join(", ")})</span>
      </div>
      <div class="pending-slot"></div>
      <div class="lesion-vote">
        <select name="vote-${n}" data-testid="vote-${n}" aria-label="class of lesion ${n}"${disabled}>${classOptions}</select>
        <select name="confidence-${n}" data-testid="confidence-${n}" aria-label="confidence for lesion ${n} (1 low, 5 high)"${disabled}>${confOptions}</select>
        <input type="text" name="note-${n}" data-testid="note-${n}" placeholder="note" maxlength="500" value="${escapeHtml(lesion.note)}"${disabled}>
      </div>`;
    if (lesion.pending) {
      const box = document.createElement("div");
      box.className = "pending";
      box.setAttribute("data-testid", `pending-${n}`);
      box.dataset.kind = lesion.pending.kind;
      const question =
        lesion.pending.kind === "merge"
          ? `Lesions ${lesion.pending.options.map((o) => `#${o.number}`).join(" and ")} were joined: which vote applies?`
          : `Split from lesion #${lesion.pending.options[0].number}: use its vote?`;
      box.innerHTML = `<span>${escapeHtml(question)}</span> `;
      lesion.pending.options.forEach((option, i) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = describe(option);
        b.setAttribute("data-testid", `resolve-${n}-${i}`);
        b.disabled = readOnly;
        b.addEventListener("click", () => onResolve(n, option));
        box.append(b);
      });
      const none = document.createElement("button");
      none.type = "button";
      none.textContent = "none (vote again)";
      none.setAttribute("data-testid", `resolve-${n}-none`);
      none.disabled = readOnly;
      none.addEventListener("click", () => onResolve(n, null));
      box.append(none);
      li.querySelector(".pending-slot").append(box);
    }
    li.querySelector(".jump").addEventListener("click", () => onJump(lesion));
    li.addEventListener("focusin", () => onFocus(n));
    li.querySelector(`[name="vote-${n}"]`).addEventListener("change", (e) => onVote(n, { vote: e.target.value }));
    li.querySelector(`[name="confidence-${n}"]`).addEventListener("change", (e) =>
      onVote(n, { confidence: e.target.value ? Number(e.target.value) : null }),
    );
    const note = li.querySelector(`[name="note-${n}"]`);
    note.addEventListener("change", () => onVote(n, { note: note.value }));
    list.append(li);
  }
}
