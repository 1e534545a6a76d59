// The rater's queue (annotations/queue.html): Enter opens the next case, unless a field or a
// link has the focus.
document.addEventListener("keydown", (event) => {
  const next = document.querySelector('[data-testid="next-case"]');
  if (event.key !== "Enter" || !next || event.target.closest("input, textarea, select, button, a")) return;
  event.preventDefault();
  window.location.assign(next.href);
});
