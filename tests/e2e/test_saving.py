"""The workspace's saving layer (frontend/static/qsmreview/annotate/saving.js) in Chromium against
the real revision API: autosave after the debounce, conflict copies from a stale parent, retries
while the server is unreachable, IndexedDB drafts across a reload, submit locking the case, the
history panel's restore; plus the figures (hash and gzip time on a full-size 384 x 384 x 90 mask).

The module is imported into any logged-in page and fed synthetic NIfTI bytes built here with
nibabel on the session's T2* grid; ``getBitmap`` returns those bytes, so an edit is a new array
that only the saver's watcher sees (as after a cluster erase, which fires no NiiVue event).
"""

from __future__ import annotations

import gzip
import json
import time

import nibabel as nib
import numpy as np
import pytest

from tests.fixtures.nifti import AFFINE, SHAPE, magnitude_data
from tests.fixtures.phantom import store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAVING = "/static/qsmreview/annotate/saving.js"


def mask_bytes(*boxes: tuple[slice, slice, slice]) -> list[int]:
    """Uncompressed NIfTI (uint8, the T2* grid, like nv.saveImage) with ``boxes`` set to 1."""
    data = np.zeros(SHAPE, dtype=np.uint8)
    for box in boxes:
        data[box] = 1
    return list(nib.Nifti1Image(data, AFFINE).to_bytes())


def expected(*boxes: tuple[slice, slice, slice]) -> np.ndarray:
    data = np.zeros(SHAPE, dtype=bool)
    for box in boxes:
        data[box] = True
    return data


LESION_A = (slice(3, 6), slice(4, 7), slice(2, 4))
LESION_B = (slice(9, 12), slice(12, 15), slice(4, 6))


def stored_mask(revision) -> np.ndarray:
    with revision.file.open("rb") as fh:
        raw = gzip.decompress(fh.read())
    return np.asanyarray(nib.Nifti1Image.from_bytes(raw).dataobj) > 0


@pytest.fixture
def case(media_root, session, rater, admin):
    """An assignment of ``session`` (a 3-D T2* magnitude on the fixtures' grid) to ``rater``."""
    from qsmreview.annotations.services import assignment_create

    store(session, "t2star_mag", magnitude_data(SHAPE), AFFINE)
    return assignment_create(by=admin, session=session, rater=rater)


HARNESS = """
async ({ name, assignmentId, latest, nifti, debounceMs, user }) => {
  const { CaseSaver, fetchRevisionMask } = await import("%s");
  const gunzip = async (buffer) =>
    new Uint8Array(await new Response(new Blob([buffer]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
  const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
  const t = { states: [], saved: [], conflicts: [], loaded: [], nifti: new Uint8Array(nifti), lesions: [] };
  t.saver = new CaseSaver({
    assignmentId, latestRevisionId: latest, csrfToken: csrf, apiBase: "/api/v1",
    getSnapshot: async () => ({ nifti: t.nifti.slice(), lesions: t.lesions }),
    getBitmap: () => t.nifti,
    onState: (state, detail) => t.states.push([state, detail.detail ?? null, performance.now()]),
    onSaved: (revision) => t.saved.push(revision),
    onConflict: (c) => t.conflicts.push(c),
    loadRevision: async (revision) => {  // as the viewer would: show the stored mask
      t.nifti = await gunzip(await fetchRevisionMask("/api/v1", revision.id));
      t.loaded.push(revision.id);
    },
    debounceMs, user, watchMs: 200,
  });
  t.edit = (bytes) => { t.nifti = new Uint8Array(bytes); };
  (window.tabs ??= {})[name] = t;
}
""" % SAVING


def open_saver(page, assignment, *, name="a", latest=None, nifti=None, debounce_ms=1000, user="rater1"):
    """A CaseSaver in ``page`` as ``window.tabs[name]`` (two names = two tabs on one case)."""
    page.evaluate(
        HARNESS,
        {
            "name": name,
            "assignmentId": assignment.pk,
            "latest": latest,
            "nifti": nifti if nifti is not None else mask_bytes(),
            "debounceMs": debounce_ms,
            "user": user,
        },
    )


def states(page, name="a") -> list[str]:
    return page.evaluate("(n) => window.tabs[n].states.map((s) => s[0])", name)


def wait_saved(page, count, name="a", timeout=15_000):
    page.wait_for_function(
        "([n, c]) => window.tabs[n].saved.length >= c && window.tabs[n].saver.state === 'saved'",
        arg=[name, count],
        timeout=timeout,
    )


def test_it_autosaves_after_the_last_change(logged_in_page, live_server, rater, case) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    open_saver(page, case, debounce_ms=1500)
    # Three edits 0.6 s apart, each announced: one save, 1.5 s after the last.
    for boxes in ([LESION_A], [LESION_A, LESION_B], [LESION_B]):
        page.evaluate("([b]) => { window.tabs.a.edit(b); window.tabs.a.saver.changed(); window.tabs.a.t0 = performance.now(); }", [mask_bytes(*boxes)])
        time.sleep(0.6)
        assert Revision.objects.count() == 0
    wait_saved(page, 1)
    delay = page.evaluate("() => window.tabs.a.states.find((s) => s[0] === 'saving')[2] - window.tabs.a.t0")
    assert delay >= 1500
    first = Revision.objects.get()
    assert (first.kind, first.parent, first.author) == ("save", None, rater)
    assert np.array_equal(stored_mask(first), expected(LESION_B))
    assert page.evaluate("() => window.tabs.a.saver.latestRevisionId") == first.pk
    assert states(page)[:3] == ["dirty", "saving", "saved"]

    # An edit NiiVue does not announce (no changed()): the watcher sees it, the save follows.
    page.evaluate("([b]) => window.tabs.a.edit(b)", [mask_bytes(LESION_A, LESION_B)])
    wait_saved(page, 2)
    second = Revision.objects.get(number=2)
    assert second.parent_id == first.pk
    assert np.array_equal(stored_mask(second), expected(LESION_A, LESION_B))
    assert page.evaluate("() => window.tabs.a.saved[1].lesions.length") == 2
    case.refresh_from_db()
    assert (case.latest_revision_id, case.lesion_count, case.status) == (second.pk, 2, "in_progress")


def test_a_stale_parent_gets_the_conflict_state_and_both_versions_stay(logged_in_page, live_server, rater, case) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    # Two tabs open on a case with no revision yet; tab a saves first.
    open_saver(page, case, name="a", user="tab-a")
    open_saver(page, case, name="b", user="tab-b")
    assert page.evaluate("([b]) => { window.tabs.a.edit(b); return window.tabs.a.saver.saveNow(); }", [mask_bytes(LESION_A)]) == "saved"
    mine = mask_bytes(LESION_B)
    assert page.evaluate("([b]) => { window.tabs.b.edit(b); return window.tabs.b.saver.saveNow(); }", [mine]) == "conflict"

    theirs, copy = Revision.objects.get(number=1), Revision.objects.get(number=2)
    assert (theirs.kind, copy.kind, copy.parent) == ("save", "conflict", None)
    assert np.array_equal(stored_mask(copy), expected(LESION_B))
    conflict = page.evaluate("() => window.tabs.b.conflicts")
    assert conflict == [{"latestRevision": theirs.pk, "conflictRevision": copy.pk}]
    case.refresh_from_db()
    assert case.latest_revision_id == theirs.pk  # never overwritten silently

    # While in conflict nothing is saved, even on a new edit.
    page.evaluate("([b]) => { window.tabs.b.edit(b); window.tabs.b.saver.changed(); }", [mask_bytes(LESION_A, LESION_B)])
    assert page.evaluate("() => window.tabs.b.saver.saveNow()") == "conflict"
    assert Revision.objects.count() == 2

    # "mine": the local mask is saved on top of the server's latest.
    assert page.evaluate("() => window.tabs.b.saver.resolveConflict('mine')") == "saved"
    third = Revision.objects.get(number=3)
    assert (third.kind, third.parent_id) == ("save", theirs.pk)
    assert np.array_equal(stored_mask(third), expected(LESION_A, LESION_B))


def test_taking_theirs_keeps_edits_made_after_the_conflict_as_another_copy(
    logged_in_page, live_server, rater, case
) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    open_saver(page, case, name="a", user="tab-a")
    open_saver(page, case, name="b", user="tab-b")
    assert page.evaluate("([b]) => { window.tabs.a.edit(b); return window.tabs.a.saver.saveNow(); }", [mask_bytes(LESION_A)]) == "saved"
    assert page.evaluate("([b]) => { window.tabs.b.edit(b); return window.tabs.b.saver.saveNow(); }", [mask_bytes(LESION_B)]) == "conflict"
    page.evaluate("([b]) => window.tabs.b.edit(b)", [mask_bytes(LESION_A, LESION_B)])  # drawn after the conflict

    assert page.evaluate("() => window.tabs.b.saver.resolveConflict('theirs')") == "saved"
    theirs = Revision.objects.get(number=1)
    copies = Revision.objects.filter(kind="conflict").order_by("number")
    assert [stored_mask(r).sum() for r in copies] == [expected(LESION_B).sum(), expected(LESION_A, LESION_B).sum()]
    assert page.evaluate("() => [window.tabs.b.saver.latestRevisionId, window.tabs.b.loaded, window.tabs.b.saver.state]") == [
        theirs.pk, [theirs.pk], "saved"
    ]
    case.refresh_from_db()
    assert case.latest_revision_id == theirs.pk


def test_an_unreachable_server_means_retrying_then_saved_with_nothing_lost(logged_in_page, live_server, rater, case) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    page.route("**/api/v1/assignments/*/revisions/", lambda route: route.abort("internetdisconnected"))
    open_saver(page, case)
    assert page.evaluate("([b]) => { window.tabs.a.edit(b); return window.tabs.a.saver.saveNow(); }", [mask_bytes(LESION_A)]) == "retrying"
    page.evaluate("([b]) => window.tabs.a.edit(b)", [mask_bytes(LESION_A, LESION_B)])  # edit while retrying
    page.wait_for_function("() => window.tabs.a.states.filter((s) => s[0] === 'retrying').length >= 2", timeout=10_000)
    details = page.evaluate("() => window.tabs.a.saver.detail")
    assert details["attempt"] >= 2 and details["retryInMs"] >= 2000  # backoff 1 s, 2 s, ...
    assert Revision.objects.count() == 0

    page.unroute("**/api/v1/assignments/*/revisions/")
    page.evaluate("() => window.dispatchEvent(new Event('online'))")  # retry at once
    wait_saved(page, 1, timeout=5_000)
    revision = Revision.objects.get()
    assert np.array_equal(stored_mask(revision), expected(LESION_A, LESION_B))
    assert page.evaluate("() => window.tabs.a.saver.draft()") is None  # deleted after the save


def test_a_draft_survives_a_reload_when_the_save_never_succeeded(logged_in_page, live_server, rater, case) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    page.route("**/api/v1/assignments/*/revisions/", lambda route: route.abort())
    open_saver(page, case)
    edit = mask_bytes(LESION_A, LESION_B)
    assert page.evaluate("([b]) => { window.tabs.a.edit(b); return window.tabs.a.saver.saveNow(); }", [edit]) == "retrying"

    page.reload()
    open_saver(page, case)  # the page comes back with the last saved state: nothing
    draft = page.evaluate(
        "async () => { const d = await window.tabs.a.saver.draft(); return d && {...d, mask: Array.from(d.mask)}; }"
    )
    assert draft is not None
    assert (draft["parent"], draft["assignmentId"], draft["stale"]) == (None, case.pk, False)
    assert list(gzip.decompress(bytes(draft["mask"]))) == edit
    assert abs(draft["savedAt"] / 1000 - time.time()) < 60

    # The page offers it; restoring saves it (the server is back).
    page.unroute("**/api/v1/assignments/*/revisions/")
    page.evaluate(
        """() => { window.offer = window.tabs.a.saver.applyDraftPrompt(document.body, async (d) => {
             const raw = await new Response(new Blob([d.mask]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
             window.tabs.a.edit(new Uint8Array(raw)); window.tabs.a.lesions = d.lesions; }); }"""
    )
    prompt = page.locator('[data-testid="draft-prompt"]')
    prompt.wait_for()
    assert "Unsaved changes from" in prompt.inner_text()
    page.click('[data-testid="draft-restore"]')
    assert page.evaluate("() => window.offer") == "applied"
    revision = Revision.objects.get()
    assert np.array_equal(stored_mask(revision), expected(LESION_A, LESION_B))
    assert page.evaluate("() => window.tabs.a.saver.draft()") is None
    assert prompt.count() == 0


def test_submit_locks_the_case(logged_in_page, live_server, rater, case) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    open_saver(page, case, debounce_ms=60_000)
    page.evaluate("([b]) => { window.tabs.a.edit(b); window.tabs.a.saver.changed(); }", [mask_bytes(LESION_A)])
    result = page.evaluate("() => window.tabs.a.saver.submit()")  # saves the pending edit first
    revision = Revision.objects.get()
    case.refresh_from_db()
    assert (case.status, case.submitted_revision_id) == ("submitted", revision.pk)
    assert result["status"] == "submitted"
    assert page.evaluate("() => window.tabs.a.saver.state") == "locked"

    # Another tab still on the case: its save is refused by the server (409) -> locked.
    open_saver(page, case, name="b", latest=revision.pk, user="tab-b")
    state = page.evaluate("([b]) => { window.tabs.b.edit(b); return window.tabs.b.saver.saveNow(); }", [mask_bytes(LESION_B)])
    assert state == "locked"
    assert page.evaluate("() => window.tabs.b.saver.detail.detail")
    assert Revision.objects.count() == 1


def test_a_refused_mask_shows_the_servers_message_and_is_not_retried(logged_in_page, live_server, rater, case) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    open_saver(page, case)
    wrong = list(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), AFFINE).to_bytes())
    assert page.evaluate("([b]) => { window.tabs.a.edit(b); return window.tabs.a.saver.saveNow(); }", [wrong]) == "error"
    detail = page.evaluate("() => window.tabs.a.saver.detail.detail")
    assert "shape" in detail
    time.sleep(1.5)
    assert states(page).count("saving") == 1
    assert Revision.objects.count() == 0


def test_the_history_lists_revisions_and_restores_one(logged_in_page, live_server, rater, case) -> None:
    from qsmreview.annotations.models import Revision

    page = logged_in_page(rater)
    open_saver(page, case)
    for boxes in ([LESION_A], [LESION_A, LESION_B]):
        assert page.evaluate("([b]) => { window.tabs.a.edit(b); return window.tabs.a.saver.saveNow(); }", [mask_bytes(*boxes)]) == "saved"
    page.evaluate(
        """async ({ id }) => {
             const { renderHistory } = await import("/static/qsmreview/annotate/history.js");
             const box = document.createElement("div"); document.body.append(box);
             window.history_ = renderHistory(box, { assignmentId: id, apiBase: "/api/v1", readOnly: false,
               onRestore: (r) => window.tabs.a.saver.restore(r.id), onOpen: () => {} });
             await window.history_.ready; }""",
        {"id": case.pk},
    )
    rows = page.locator('[data-testid="revision-history"] tbody tr')
    assert rows.count() == 2
    assert rows.nth(0).locator(".number").inner_text() == "2"
    assert "latest" in rows.nth(0).inner_text() and rows.nth(0).locator("[data-action=restore]").count() == 0
    assert rows.nth(1).locator(".lesions").inner_text() == "1"
    assert rows.nth(1).locator(".author").inner_text() == rater.username

    rows.nth(1).locator("[data-action=restore]").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=revision-history] tbody tr').length === 3")
    restored = Revision.objects.get(number=3)
    first = Revision.objects.get(number=1)
    assert (restored.kind, restored.restored_from_id, restored.parent_id) == ("restore", first.pk, Revision.objects.get(number=2).pk)
    assert page.evaluate("() => [window.tabs.a.saver.latestRevisionId, window.tabs.a.loaded]") == [restored.pk, [restored.pk]]
    assert "restore" in rows.nth(0).locator(".kind").inner_text()
    # The viewer now shows revision 1's mask (loadRevision): the new baseline, not an edit.
    shown = page.evaluate("() => Array.from(window.tabs.a.nifti)")
    assert np.array_equal(np.asanyarray(nib.Nifti1Image.from_bytes(bytes(shown)).dataobj) > 0, expected(LESION_A))
    time.sleep(1.5)
    assert Revision.objects.count() == 3
    assert page.evaluate("() => window.tabs.a.saver.state") == "saved"


FIGURES = """
async () => {
  const { hashBytes, gzip } = await import("%s");
  const [nx, ny, nz] = [384, 384, 90];
  const header = 352;
  const nifti = new Uint8Array(header + nx * ny * nz);
  const bitmap = nifti.subarray(header);   // NiiVue's drawBitmap size; saveImage adds the header
  for (let z = 40; z < 46; z++) for (let y = 180; y < 190; y++) for (let x = 200; x < 212; x++) bitmap[x + nx * (y + ny * z)] = 1;
  const time = (fn, n) => { const t0 = performance.now(); for (let i = 0; i < n; i++) fn(); return (performance.now() - t0) / n; };
  hashBytes(bitmap); hashBytes(bitmap);  // warm up (JIT)
  const hashMs = time(() => hashBytes(bitmap), 10);
  const before = hashBytes(bitmap);
  bitmap[5_000_000] = 1;
  const detected = hashBytes(bitmap) !== before;
  bitmap[5_000_000] = 0;
  await gzip(nifti);
  let t0 = performance.now();
  const gz = await gzip(nifti);
  const gzipMs = performance.now() - t0;
  return { bytes: bitmap.length, hashMs, detected, gzipMs, gzipBytes: gz.length };
}
""" % SAVING


def test_figures_hash_and_gzip_of_a_full_size_mask(logged_in_page, live_server, rater, screens_dir) -> None:
    page = logged_in_page(rater)
    figures = page.evaluate(FIGURES)
    (screens_dir.parent / "saving_figures.json").write_text(json.dumps(figures, indent=2))
    print("saving figures:", figures)
    assert figures["bytes"] == 384 * 384 * 90
    assert figures["detected"]
    assert figures["hashMs"] < 100  # run on pointerup and every 2 s: must not stall a stroke
    assert figures["gzipBytes"] < 64 * 1024  # a small lesion fits a keepalive upload


def test_active_time_excludes_idle_gaps(logged_in_page, live_server, rater) -> None:
    page = logged_in_page(rater)
    seconds = page.evaluate(
        """async () => {
             const { ActivityClock } = await import("/static/qsmreview/annotate/activity.js");
             let now = 0;
             const clock = new ActivityClock({ target: new EventTarget(), now: () => now });
             for (const t of [0, 10_000, 20_000, 200_000, 230_000]) { now = t; clock.tick(); }
             const first = clock.pending();      // 10 + 10 + (idle 180) + 30
             clock.consume(first - 5);
             return [first, clock.pending()];
           }"""
    )
    assert seconds == [50, 5]
