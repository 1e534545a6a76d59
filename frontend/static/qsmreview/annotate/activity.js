// Active editing time: how long the rater actually worked on a case, for the study's effort
// figures (Assignment.active_seconds sums what each save reports).
//
// Time counts between two input events (pointer, key, wheel, touch) that are at most `idleMs`
// apart; a longer gap (coffee, another tab, a locked screen) counts as nothing, not even its first
// minute. Seconds accumulate until a save reports them: the saver reads `pending()` when it sends
// and calls `consume(sent)` only when the server stored the revision, so a failed or conflicting
// save loses no time.

const EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart"];

export class ActivityClock {
  /**
   * @param {object} [options]
   * @param {EventTarget} [options.target=window] where input events are heard (capture phase).
   * @param {number} [options.idleMs=60000] a gap between two events longer than this is idle.
   * @param {() => number} [options.now] clock in ms (tests).
   */
  constructor({ target = window, idleMs = 60_000, now = () => performance.now() } = {}) {
    this.idleMs = idleMs;
    this.now = now;
    this.target = target;
    this.last = null; // time of the previous input event (ms)
    this.activeMs = 0; // counted and not yet consumed by a save
    this.onInput = () => this.tick();
    for (const type of EVENTS) target.addEventListener(type, this.onInput, { capture: true, passive: true });
  }

  /** Record one input event now (called by the listeners; public for synthetic edits). */
  tick() {
    const t = this.now();
    if (this.last !== null) {
      const gap = t - this.last;
      if (gap > 0 && gap <= this.idleMs) this.activeMs += gap;
    }
    this.last = t;
  }

  /** Active seconds not yet reported by a save. */
  pending() {
    return this.activeMs / 1000;
  }

  /** A save stored `seconds` (what `pending()` returned when it was sent): stop counting them. */
  consume(seconds) {
    this.activeMs = Math.max(0, this.activeMs - seconds * 1000);
  }

  dispose() {
    for (const type of EVENTS) this.target.removeEventListener(type, this.onInput, { capture: true });
  }
}
