// Small helpers shared by the pages' scripts (plain ES modules, no bundler).

/** ``text`` escaped for use inside HTML (null and undefined become ""). */
export function escapeHtml(text) {
  const div = document.createElement("div");
  div.textContent = text == null ? "" : String(text);
  return div.innerHTML;
}
