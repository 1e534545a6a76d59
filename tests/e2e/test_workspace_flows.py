"""Issue 16's end-to-end flows, through the real workspace page (/rate/<id>/) in Chromium: a rater
opens the next case from the queue, draws, votes, autosave stores it and a reload shows it; undo
and redo reach the server; restoring from the history panel; a second tab's stale save gets the
conflict UI with both versions on the server; an unreachable server loses nothing (retried in
the tab; kept in the browser and offered again when the tab was closed); submit locks the case; and another rater (or the rater, for QSM) sees nothing they may not.

The page offers no hook to shorten the autosave delay (3 s): the autosave test waits for it; the
others save with Ctrl+S or the page's buttons. Helpers come from test_workspace.py (40 x 44 x 20
volumes on a RAS grid: every frame is rendered in software).
"""

from __future__ import annotations

import gzip
import time

import nibabel as nib
import numpy as np
import pytest

from tests.e2e.test_workspace import RAS, SHAPE, VIEWPORT, drag, lesions, make_case, mask_bytes, open_case, save_revision, volume, world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WS = '[data-testid="workspace"]'
STATE = '[data-testid="save-state"]'
#: Two places on the axial slice k = 10, far enough apart that strokes there never touch.
A = (20, 22, 10)
B = (29, 32, 10)

#: Record every state the save indicator shows (its data-state and its text), in order.
WATCH_STATES = """() => {
  const out = document.querySelector('[data-testid="save-state"]');
  window.__states = [[out.dataset.state, out.textContent]];
  new MutationObserver(() => {
    const last = window.__states[window.__states.length - 1];
    const now = [out.dataset.state, out.textContent];
    if (last[0] !== now[0] || last[1] !== now[1]) window.__states.push(now);
  }).observe(out, { attributes: true, childList: true, characterData: true, subtree: true });
}"""


def states(page) -> list[str]:
    return [s for s, _ in page.evaluate("window.__states")]


def wait_state(page, name: str, timeout: float = 15_000) -> None:
    page.wait_for_selector(f'{STATE}[data-state="{name}"]', timeout=timeout)


def stroke(page, ijk, panel: int = 0) -> None:
    """A short pen stroke (size 3) at voxel ``ijk`` on ``panel``'s axial slice through it."""
    mm = world(RAS, ijk)
    page.evaluate("mm => qsmWorkspace.setCrosshairMm(mm)", mm)
    # Two animation frames: the slice is drawn before the pen lands (a tab just brought to the
    # front on a busy machine can lag a frame behind, and the stroke would go on the old slice).
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    at = page.evaluate("([mm, p]) => qsmWorkspace.screenOfMm(mm, p)", [mm, panel])
    drag(page, [(at["x"], at["y"]), (at["x"] + 4, at["y"]), (at["x"] + 8, at["y"] + 2)])


def shown_voxels(page) -> set[tuple[int, int, int]]:
    """The file voxels (T2* grid, RAS affine) of the mask the page shows, from their world mm."""
    mms = page.evaluate(
        "(() => { const w = qsmWorkspace, out = []; w.mask.forEach((v, i) => { if (v) out.push(w.grid.mm(w.grid.ijk(i))); }); return out; })()"
    )
    inv = np.linalg.inv(RAS)
    return {tuple(int(v) for v in np.rint(inv @ [*mm, 1.0])[:3]) for mm in mms}


def panels_agree(page) -> bool:
    return page.evaluate(
        "(() => { const m = qsmWorkspace.mask; return qsmWorkspace.viewers.every(v => v.nv.drawBitmap.every((x, i) => x === m[i])); })()"
    )


def stored_voxels(revision) -> set[tuple[int, int, int]]:
    with revision.file.open("rb") as f:
        image = nib.Nifti1Image.from_bytes(gzip.decompress(f.read()))
    assert np.allclose(image.affine, RAS, atol=1e-3) and image.shape == SHAPE
    return {tuple(v) for v in np.argwhere(np.asarray(image.dataobj) > 0).tolist()}


def latest(assignment):
    assignment.refresh_from_db()
    return assignment.latest_revision


def api_status(page, url: str, method: str = "GET") -> int:
    return page.evaluate(
        "([u, m]) => fetch(u, { method: m, credentials: 'same-origin', headers: { Accept: 'application/json' } }).then(r => r.status)",
        [url, method],
    )


def test_queue_enter_draw_vote_autosave_and_a_reload_shows_it(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    from qsmreview.annotations.models import Revision

    assignment, _ = make_case(session, rater, admin)
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/rate/")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/rate/{assignment.pk}/")
    page.wait_for_selector(f'{WS}[data-ready="1"]', timeout=60_000)
    page.evaluate(WATCH_STATES)
    assert page.get_attribute(STATE, "data-state") == "saved"

    stroke(page, A)
    page.wait_for_selector('[data-testid="lesion-1"]')
    page.select_option('[data-testid="vote-1"]', "cortical")
    page.select_option('[data-testid="confidence-1"]', "4")
    drawn = shown_voxels(page)
    assert len(drawn) >= 9 and panels_agree(page)

    # No Ctrl+S: the autosave runs 3 s after the last change.
    edited_at = time.monotonic()
    assert page.get_attribute(STATE, "data-state") == "dirty"
    page.wait_for_function("window.__states.some(s => s[0] === 'saving') && window.__states.at(-1)[0] === 'saved'", timeout=15_000)
    assert time.monotonic() - edited_at > 2.0
    assert states(page)[:4] == ["saved", "dirty", "saving", "saved"]
    revision = Revision.objects.get()
    assert (revision.kind, revision.author, latest(assignment)) == ("save", rater, revision)
    assert stored_voxels(revision) == drawn
    assert [(l["number"], l["vote"], l["confidence"]) for l in revision.lesions] == [(1, "cortical", 4)]
    assert page.evaluate("qsmWorkspace.saver.draft()") is None  # no "unsaved changes" offer next time

    page.reload()
    page.wait_for_selector(f'{WS}[data-ready="1"]', timeout=60_000)
    assert shown_voxels(page) == drawn and panels_agree(page)
    assert [(l["number"], l["vote"]) for l in lesions(page)] == [(1, "cortical")]
    assert page.input_value('[data-testid="vote-1"]') == "cortical"
    assert page.input_value('[data-testid="confidence-1"]') == "4"
    assert page.get_attribute(STATE, "data-state") == "saved"


def test_undo_and_redo_reach_the_panels_and_the_saved_mask(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    from qsmreview.annotations.models import Revision

    assignment, _ = make_case(session, rater, admin)
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    open_case(page, live_server, assignment)
    undo, redo = page.locator('[data-testid="undo"]'), page.locator('[data-testid="redo"]')
    assert undo.is_disabled() and redo.is_disabled()

    stroke(page, A)
    page.wait_for_selector(f'{WS}[data-lesions="1"]')
    only_a = shown_voxels(page)
    stroke(page, B, panel=1)  # on the FLAIR panel: the same mask
    page.wait_for_selector(f'{WS}[data-lesions="2"]')
    both = shown_voxels(page)
    assert only_a < both and panels_agree(page)

    undo.click()  # the button
    page.wait_for_selector(f'{WS}[data-lesions="1"]')
    assert shown_voxels(page) == only_a and panels_agree(page) and redo.is_enabled()
    page.locator('[data-panel="0"] canvas').focus()
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector(f'{WS}[data-lesions="2"]')
    assert shown_voxels(page) == both and panels_agree(page) and redo.is_disabled()
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    page.wait_for_selector(f'{WS}[data-lesions="0"]')
    assert undo.is_disabled() and page.evaluate("qsmWorkspace.viewers.every(v => v.nv.drawBitmap.every(x => x === 0))")
    page.keyboard.press("Control+y")
    page.wait_for_selector(f'{WS}[data-lesions="1"]')
    assert shown_voxels(page) == only_a and panels_agree(page)

    page.keyboard.press("Control+s")
    page.wait_for_function("() => qsmWorkspace.saver.latestRevisionId !== null && qsmWorkspace.saver.state === 'saved'", timeout=15_000)
    assert stored_voxels(Revision.objects.get()) == only_a


def test_restoring_an_earlier_revision_from_the_history_panel(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    from qsmreview.annotations.models import Revision

    assignment, _ = make_case(session, rater, admin)
    first = save_revision(assignment, rater, mask_bytes(RAS, A), [{"number": 1, "anchor_mm": world(RAS, A), "vote": "cortical", "confidence": 3, "note": ""}])
    assignment.refresh_from_db()
    second = save_revision(assignment, rater, mask_bytes(RAS, A, B), [
        {"number": 1, "anchor_mm": world(RAS, A), "vote": "wm", "confidence": 5, "note": ""},
        {"number": 2, "anchor_mm": world(RAS, B), "vote": "mixed", "confidence": 2, "note": ""},
    ])
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    open_case(page, live_server, assignment)
    assert shown_voxels(page) == {A, B}

    history = page.locator('[data-testid="history"] [data-testid="revision-history"]')
    page.wait_for_selector('[data-testid="history"] [data-testid="revision-history"][data-loaded="2"]')
    assert history.locator(f'tr[data-revision="{second.pk}"] [data-action="restore"]').count() == 0  # the latest
    history.locator(f'tr[data-revision="{first.pk}"] [data-action="restore"]').click()
    page.wait_for_selector('[data-testid="history"] [data-testid="revision-history"][data-loaded="3"]')

    restored = latest(assignment)
    assert (restored.kind, restored.number, restored.restored_from_id, restored.parent_id) == ("restore", 3, first.pk, second.pk)
    assert stored_voxels(restored) == {A}
    assert Revision.objects.count() == 3  # nothing deleted
    # The page shows revision 1 again (mask and votes), as the saved state, not as an edit.
    assert shown_voxels(page) == {A} and panels_agree(page)
    assert [(l["number"], l["vote"]) for l in lesions(page)] == [(1, "cortical")]
    assert page.input_value('[data-testid="vote-1"]') == "cortical"
    assert history.locator("tbody tr").first.get_attribute("data-revision") == str(restored.pk)
    assert "restore of #1" in history.locator("tbody tr").first.inner_text()
    assert page.get_attribute(STATE, "data-state") == "saved"
    assert page.evaluate("qsmWorkspace.saver.latestRevisionId") == restored.pk
    assert not page.evaluate("qsmWorkspace.saver.hasUnsaved()")


def test_a_second_tabs_stale_save_gets_the_conflict_ui_and_both_versions_stay(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    from qsmreview.annotations.models import Revision

    assignment, _ = make_case(session, rater, admin)
    first = logged_in_page(rater)
    first.set_viewport_size(VIEWPORT)
    second = first.context.new_page()
    second.set_viewport_size(VIEWPORT)
    # Both tabs open the case before either saves (they load side by side).
    first.goto(f"{live_server.url}/rate/{assignment.pk}/")
    second.goto(f"{live_server.url}/rate/{assignment.pk}/")
    for tab in (first, second):
        tab.wait_for_selector(f'{WS}[data-ready="1"]', timeout=60_000)

    first.bring_to_front()
    stroke(first, A)
    first.wait_for_selector(f'{WS}[data-lesions="1"]')
    first.keyboard.press("Control+s")
    first.wait_for_function("() => qsmWorkspace.saver.latestRevisionId !== null && qsmWorkspace.saver.state === 'saved'", timeout=15_000)
    theirs = Revision.objects.get()

    second.bring_to_front()
    stroke(second, B)
    second.wait_for_selector(f'{WS}[data-lesions="1"]')
    mine = shown_voxels(second)
    second.keyboard.press("Control+s")
    wait_state(second, "conflict")
    assert "conflict" in second.inner_text(STATE)
    notice = second.locator('[data-testid="ws-notice"]')
    assert notice.is_visible() and "conflict copy" in notice.inner_text()

    # Both versions are on the server; the other tab's save stays the latest.
    copy = Revision.objects.get(kind="conflict")
    assert latest(assignment) == theirs and theirs.kind == "save"
    assert stored_voxels(copy) == mine and stored_voxels(theirs) == shown_voxels(first)
    assert copy.parent_id is None and copy.author == rater
    # The history shows both, the copy marked as such.
    second.wait_for_selector(f'[data-testid="revision-history"] tr[data-revision="{copy.pk}"][data-kind="conflict"]')
    assert "conflict copy" in second.inner_text(f'tr[data-revision="{copy.pk}"]')

    # Autosave is off while in conflict: a new edit is not sent over the other tab's save.
    stroke(second, (12, 14, 10))
    second.wait_for_selector(f'{WS}[data-lesions="2"]')
    second.keyboard.press("Control+s")
    time.sleep(0.5)
    assert Revision.objects.count() == 2 and second.get_attribute(STATE, "data-state") == "conflict"

    # The conflict UI: keep mine saves this tab's mask on top of the other tab's save.
    second.click('[data-testid="conflict-mine"]')
    wait_state(second, "saved")
    kept = latest(assignment)
    assert (kept.kind, kept.parent_id) == ("save", theirs.pk)
    assert stored_voxels(kept) == shown_voxels(second)
    assert not notice.is_visible()

    # The first tab is stale now: its next save is a conflict copy too; "take theirs" shows the
    # second tab's save there (the first tab's edit stays on the server as the copy).
    first.bring_to_front()
    stroke(first, (12, 30, 10))
    first.wait_for_selector(f'{WS}[data-lesions="2"]')
    stale_edit = shown_voxels(first)
    first.keyboard.press("Control+s")
    wait_state(first, "conflict")
    first.click('[data-testid="conflict-theirs"]')
    wait_state(first, "saved")
    assert shown_voxels(first) == stored_voxels(kept) and panels_agree(first)
    assert latest(assignment) == kept
    copies = Revision.objects.filter(kind="conflict").order_by("number")
    assert [stored_voxels(r) for r in copies] == [mine, stale_edit]
    assert Revision.objects.count() == 4 and not first.locator('[data-testid="ws-notice"]').is_visible()


def test_an_unreachable_server_means_retrying_then_saved_and_a_closed_tab_leaves_a_draft(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    from qsmreview.annotations.models import Revision

    assignment, _ = make_case(session, rater, admin)
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    posts = []

    def unreachable(route):
        if route.request.method == "POST":
            posts.append(route.request.url)
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route("**/api/v1/assignments/*/revisions/", unreachable)
    open_case(page, live_server, assignment)
    page.evaluate(WATCH_STATES)

    stroke(page, A)
    page.wait_for_selector(f'{WS}[data-lesions="1"]')
    page.keyboard.press("Control+s")
    wait_state(page, "retrying")
    assert "retrying" in page.inner_text(STATE)
    # Edits made while the server is away: the next attempt sends the newest state.
    stroke(page, B)
    page.wait_for_selector(f'{WS}[data-lesions="2"]')
    page.select_option('[data-testid="vote-2"]', "wm")
    last_edit = shown_voxels(page)
    page.wait_for_function("() => qsmWorkspace.saver.detail.attempt >= 2", timeout=10_000)
    assert Revision.objects.count() == 0 and len(posts) >= 2
    assert page.get_attribute(STATE, "data-state") == "retrying"

    page.unroute("**/api/v1/assignments/*/revisions/")
    wait_state(page, "saved", timeout=20_000)  # the backoff's next attempt (2 or 4 s)
    seen = states(page)  # never "saved" before the server had the mask
    assert seen[0] == seen[-1] == "saved" and "saved" not in seen[1:-1] and "retrying" in seen
    revision = Revision.objects.get()
    assert stored_voxels(revision) == last_edit == shown_voxels(page)
    assert sorted((l["number"], l["vote"]) for l in revision.lesions) == [(1, ""), (2, "wm")]
    assert page.evaluate("qsmWorkspace.saver.draft()") is None

    # Away again, and the tab is closed before the server comes back: the edit waits in this
    # browser, and the next visit offers it; restoring saves it. Closing the tab sends one last
    # save on pagehide with fetch keepalive, which the browser finishes after the page is gone,
    # out of reach of Playwright's routes: with a real outage it fails too, so the test turns
    # keepalive off to make that last save as unreachable as the others.
    page.context.route("**/api/v1/assignments/*/revisions/", unreachable)
    page.evaluate("qsmWorkspace.saver.keepaliveMaxBytes = 0")
    stroke(page, (12, 14, 10))
    page.wait_for_selector(f'{WS}[data-lesions="3"]')
    closed_with = shown_voxels(page)
    page.keyboard.press("Control+s")
    wait_state(page, "retrying")
    context = page.context
    page.close()
    page = context.new_page()
    page.set_viewport_size(VIEWPORT)
    open_case(page, live_server, assignment)
    assert shown_voxels(page) == last_edit  # the server's latest, until the rater chooses
    prompt = page.locator('[data-testid="draft-prompt"]')
    prompt.wait_for(timeout=10_000)
    assert "Unsaved changes from" in prompt.inner_text()
    context.unroute("**/api/v1/assignments/*/revisions/")
    page.click('[data-testid="draft-restore"]')
    prompt.wait_for(state="detached", timeout=15_000)
    restored = latest(assignment)
    assert (restored.number, restored.parent_id) == (2, revision.pk)
    assert stored_voxels(restored) == closed_with == shown_voxels(page) and panels_agree(page)
    assert sorted((l["number"], l["vote"]) for l in restored.lesions) == [(1, ""), (2, "wm"), (3, "")]
    assert page.get_attribute(STATE, "data-state") == "saved"


def test_submit_locks_the_case(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    from qsmreview.annotations.models import Revision

    assignment, _ = make_case(session, rater, admin)
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    open_case(page, live_server, assignment)
    stroke(page, A)
    page.wait_for_selector(f'{WS}[data-lesions="1"]')
    drawn = shown_voxels(page)

    page.once("dialog", lambda dialog: dialog.accept())
    page.click('[data-testid="submit"]')  # saves the pending edit first
    wait_state(page, "locked")
    revision = Revision.objects.get()
    assignment.refresh_from_db()
    assert (assignment.status, assignment.submitted_revision_id) == ("submitted", revision.pk)
    assert stored_voxels(revision) == drawn

    def assert_read_only() -> None:
        assert page.get_attribute(WS, "data-read-only") == "1"
        for testid in ("tools", "save", "submit"):
            assert page.locator(f'[data-testid="{testid}"]').is_hidden(), testid
        assert page.evaluate("qsmWorkspace.viewers.every(v => !v.nv.opts.drawingEnabled)")
        assert page.locator('[data-testid="vote-1"]').is_disabled()
        page.locator('[data-panel="0"] canvas').focus()
        page.keyboard.press("p")
        assert page.get_attribute(WS, "data-tool") == "navigate"
        stroke(page, B)  # moves the crosshair, draws nothing
        page.keyboard.press("Control+s")
        assert shown_voxels(page) == drawn

    assert_read_only()
    page.reload()
    page.wait_for_selector(f'{WS}[data-ready="1"]', timeout=60_000)
    assert page.get_attribute(STATE, "data-state") == "locked"
    assert shown_voxels(page) == drawn
    assert_read_only()

    # A later save (e.g. from a tab that missed the submit) is refused by the server.
    answer = page.evaluate(
        """async ([url, parent]) => {
             const snap = await qsmWorkspace.getSnapshot();
             const form = new FormData();
             form.append("mask", new Blob([snap.nifti]), "mask.nii");
             form.append("parent", String(parent));
             form.append("lesions", "[]");
             const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
             const r = await fetch(url, { method: "POST", body: form, credentials: "same-origin",
                                          headers: { "X-CSRFToken": token, Accept: "application/json" } });
             return [r.status, (await r.json()).detail];
           }""",
        [f"/api/v1/assignments/{assignment.pk}/revisions/", revision.pk],
    )
    assert answer[0] == 409 and "submitted" in answer[1]
    assert Revision.objects.count() == 1


def test_another_rater_sees_nothing_of_the_case(logged_in_page, live_server, media_root, session, rater, rater2, admin) -> None:
    from qsmreview.annotations.services import assignment_create

    assignment, _ = make_case(session, rater, admin)
    revision = save_revision(assignment, rater, mask_bytes(RAS, A), [{"number": 1, "anchor_mm": world(RAS, A), "vote": "cortical", "confidence": 3, "note": "x"}])
    own = assignment_create(by=admin, session=session, rater=rater2)  # the same session, their own case

    page = logged_in_page(rater2)
    page.goto(f"{live_server.url}/rate/")
    rows = page.locator("tr[data-assignment]")
    assert [rows.nth(i).get_attribute("data-assignment") for i in range(rows.count())] == [str(own.pk)]
    html = page.content()
    assert str(assignment.pk) not in html and str(revision.pk) not in html
    assert page.get_attribute('[data-testid="next-case"]', "href").endswith(f"/rate/{own.pk}/")

    assert page.goto(f"{live_server.url}/rate/{assignment.pk}/").status == 404
    assert page.goto(f"{live_server.url}/rate/{own.pk}/").status == 200
    for url in (
        f"/api/v1/assignments/{assignment.pk}/",
        f"/api/v1/assignments/{assignment.pk}/revisions/",
        f"/api/v1/revisions/{revision.pk}/",
        f"/api/v1/revisions/{revision.pk}/mask/",
    ):
        assert api_status(page, url) == 404, url
    listed = page.evaluate("fetch('/api/v1/assignments/', { headers: { Accept: 'application/json' } }).then(r => r.json())")
    ids = [a["id"] for a in (listed["results"] if isinstance(listed, dict) else listed)]
    assert ids == [own.pk]


def test_qsm_and_another_raters_revision_are_refused_to_a_rater(logged_in_page, live_server, media_root, session, rater, rater2, admin) -> None:
    from tests.fixtures.phantom import store

    from qsmreview.annotations.services import assignment_create

    assignment, series = make_case(session, rater, admin)
    qsm = store(session, "qsm", volume(9), RAS)
    theirs = assignment_create(by=admin, session=session, rater=rater2)
    their_revision = save_revision(theirs, rater2, mask_bytes(RAS, B), [])
    page = logged_in_page(rater)

    # The rater's own case answers; its T2* display volume too (the control for the refusals).
    assert api_status(page, f"/api/v1/assignments/{assignment.pk}/") == 200
    assert api_status(page, f"/api/v1/series/{series[0].pk}/display/") == 200
    for url in (f"/api/v1/series/{qsm.pk}/volume/", f"/api/v1/series/{qsm.pk}/display/", f"/api/v1/series/{qsm.pk}/"):
        assert api_status(page, url) == 404, url
    assert page.goto(f"{live_server.url}/series/{qsm.pk}/view/").status == 404
    assert page.goto(f"{live_server.url}/rate/{theirs.pk}/").status == 404
    for url in (f"/api/v1/revisions/{their_revision.pk}/", f"/api/v1/revisions/{their_revision.pk}/mask/"):
        assert api_status(page, url) == 404, url
