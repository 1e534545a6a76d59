"""The rater workspace in Chromium, on the real API: the queue opens the next case; four panels
(display volumes) on the T2* grid; drawing with NiiVue's pen, lesion numbers and votes,
undo/redo, erasing a 3-D lesion, saving; read-only for an admin; and the orientation round trip
of a mask on a flipped, oblique T2* grid (saved through the server and loaded back).

Every volume here is small (40 x 44 x 20): every frame is rendered in software.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from tests.fixtures.phantom import rotation_matrix, store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHAPE = (40, 44, 20)
#: A plain RAS grid (1 x 1 x 2 mm).
RAS = np.array([[1.0, 0, 0, -20], [0, 1.0, 0, -22], [0, 0, 2.0, -20], [0, 0, 0, 1]])
VIEWPORT = {"width": 1280, "height": 900}
KINDS = ("t2star_mag", "flair", "t1_wmn", "t1_csfn")


def oblique_flipped() -> np.ndarray:
    """x and z flipped, axes permuted (file i runs along world y), rotated 12 degrees: nothing
    like RAS, so a mask written in NiiVue's bitmap order under this header would be wrong."""
    axes = np.array([[0.0, -0.9, 0.0], [1.1, 0.0, 0.0], [0.0, 0.0, -2.0]])  # columns: i, j, k
    a = np.eye(4)
    a[:3, :3] = rotation_matrix((12.0, 0.0, 8.0)) @ axes
    a[:3, 3] = [15.0, -18.0, 22.0]
    return a


def volume(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    head = sum(g**2 for g in grids) <= 0.8
    return (np.where(head, 400.0, 20.0) + rng.normal(0, 5, SHAPE)).astype(np.float32)


def make_case(session, rater, admin, affine=RAS):
    from qsmreview.annotations.services import assignment_create

    series = [store(session, kind, volume(n), affine) for n, kind in enumerate(KINDS)]
    return assignment_create(by=admin, session=session, rater=rater), series


def world(affine: np.ndarray, ijk) -> list[float]:
    return (affine @ np.array([*ijk, 1.0]))[:3].tolist()


def save_revision(assignment, rater, mask: bytes, lesions: list[dict]):
    """A revision saved by the rater (through the service, as the API would)."""
    from qsmreview.annotations.services import revision_create

    return revision_create(by=rater, assignment=assignment, mask_bytes=mask, parent=assignment.latest_revision, lesions=lesions)


def open_case(page, live_server, assignment) -> None:
    page.goto(f"{live_server.url}/rate/{assignment.pk}/")
    page.wait_for_selector('[data-testid="workspace"][data-ready="1"], [data-testid="workspace"][data-ready="error"]', timeout=60_000)
    assert page.get_attribute('[data-testid="workspace"]', "data-ready") == "1", page.inner_text('[data-testid="ws-error"]')


def lesions(page) -> list[dict]:
    return page.evaluate(
        "qsmWorkspace.lesions().map(l => ({number: l.number, count: l.count, volume: l.volumeMm3,"
        " vote: l.vote, anchor: l.anchorMm, pending: l.pending && l.pending.kind}))"
    )


def snapshot_image(page) -> nib.Nifti1Image:
    data = page.evaluate("qsmWorkspace.getSnapshot().then(s => Array.from(s.nifti))")
    return nib.Nifti1Image.from_bytes(bytes(data))


def mask_bytes(affine: np.ndarray, *voxels) -> bytes:
    data = np.zeros(SHAPE, dtype=np.uint8)
    for v in voxels:
        data[v] = 1
    return gzip.compress(nib.Nifti1Image(data, affine).to_bytes(), mtime=0)


def drag(page, points) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p)
    page.mouse.up()


def test_the_queue_opens_the_next_case_with_enter(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    assignment, series = make_case(session, rater, admin)
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server.url}/rate/")
    assert page.locator(f'tr[data-assignment="{assignment.pk}"]').count() == 1
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/rate/{assignment.pk}/")
    page.wait_for_selector('[data-testid="workspace"][data-ready="1"]', timeout=60_000)
    assert page.locator("[data-panel]").count() == 4
    assert page.evaluate("qsmWorkspace.viewers.every(v => v.nv.volumes.length === 1)")

    # The filled outline: a closed contour (4 moves) is filled in its slice.
    centre = world(RAS, (20, 22, 10))
    page.evaluate("mm => qsmWorkspace.setCrosshairMm(mm)", centre)
    c = page.evaluate("mm => qsmWorkspace.screenOfMm(mm, 0)", centre)
    page.keyboard.press("f")
    page.select_option('[data-testid="pen-size"]', "1")
    drag(page, [(c["x"] - 30, c["y"] - 30), (c["x"] + 30, c["y"] - 30), (c["x"] + 30, c["y"] + 30), (c["x"] - 30, c["y"] + 30), (c["x"] - 30, c["y"] - 28)])
    page.wait_for_selector('[data-testid="lesion-1"]')
    filled = lesions(page)[0]
    assert filled["count"] >= 25  # the inside, not just the outline (about 7 x 7 voxels)
    page.keyboard.press("Control+z")
    page.wait_for_selector('[data-testid="workspace"][data-lesions="0"]')

    # Region grow from a click on the T2* panel: the bright head around the click, within 3 mm.
    page.keyboard.press("g")
    page.fill('[data-testid="grow-radius"]', "3")
    page.mouse.click(c["x"], c["y"])
    page.wait_for_selector('[data-testid="lesion-1"]')
    grown = page.evaluate(
        """() => { const w = qsmWorkspace, l = w.lesions()[0], a = l.anchorMm;
                   return Array.from(l.voxels, i => w.grid.mm(w.grid.ijk(i))); }"""
    )
    seed = page.evaluate("(() => { const g = qsmWorkspace.grid; return g.mm(g.ijk(g.indexOfMm(qsmWorkspace.panels.crosshairMm()))); })()")
    # Every voxel of the (uniformly bright) head within 3 mm: the lattice points of the ball.
    ball = sum(1 for i in range(-3, 4) for j in range(-3, 4) for k in range(-1, 2) if i * i + j * j + 4 * k * k <= 9)
    assert len(grown) == ball
    assert max(np.linalg.norm(np.subtract(p, seed)) for p in grown) <= 3.0 + 1e-6

    # The list's jump button puts the crosshair inside the lesion.
    page.evaluate("qsmWorkspace.setCrosshairMm([10, 10, 10])")
    page.click('[data-testid="jump-1"]')
    at_lesion = page.evaluate("qsmWorkspace.panels.crosshairMm()")
    assert page.evaluate("mm => qsmWorkspace.mask[qsmWorkspace.indexOfMm(mm)]", at_lesion) == 1


def test_a_rater_draws_votes_undoes_and_erases_a_lesion(logged_in_page, live_server, media_root, session, rater, admin, screens_dir) -> None:
    assignment, series = make_case(session, rater, admin)
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    open_case(page, live_server, assignment)
    ws = page.locator('[data-testid="workspace"]')
    assert ws.get_attribute("data-tool") == "pen"

    # A short pen stroke (size 3) on the T2* panel's axial slice, near the centre.
    centre = world(RAS, (20, 22, 10))
    page.evaluate("mm => qsmWorkspace.setCrosshairMm(mm)", centre)
    at = page.evaluate("mm => qsmWorkspace.screenOfMm(mm, 0)", centre)
    drag(page, [(at["x"], at["y"]), (at["x"] + 4, at["y"]), (at["x"] + 8, at["y"] + 2)])
    page.wait_for_selector('[data-testid="lesion-1"]')
    found = lesions(page)
    assert [l["number"] for l in found] == [1]
    assert found[0]["count"] >= 9 and found[0]["volume"] == pytest.approx(found[0]["count"] * 2.0)
    assert "mm³" in page.inner_text('[data-testid="volume-1"]')
    # The same voxels are on every panel.
    assert page.evaluate(
        "(() => { const m = qsmWorkspace.mask; return qsmWorkspace.viewers.every(v => v.nv.drawBitmap.every((x, i) => x === m[i])); })()"
    )

    page.select_option('[data-testid="vote-1"]', "wm")
    page.select_option('[data-testid="confidence-1"]', "4")
    assert lesions(page)[0]["vote"] == "wm"

    # Undo removes it (on every panel), redo brings it back with its vote.
    page.locator('[data-panel="0"] canvas').focus()
    page.keyboard.press("Control+z")
    page.wait_for_selector('[data-testid="workspace"][data-lesions="0"]')
    assert page.evaluate("qsmWorkspace.viewers.every(v => v.nv.drawBitmap.every(x => x === 0))")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector('[data-testid="workspace"][data-lesions="1"]')
    assert lesions(page)[0]["vote"] == "wm"
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+y")
    page.wait_for_selector('[data-testid="workspace"][data-lesions="1"]')

    # Make it 3-D (the slices above and below), then erase the whole lesion with one click.
    page.evaluate(
        """() => { const w = qsmWorkspace, [nx, ny] = w.grid.dims, slab = nx * ny;
                   const on = []; w.mask.forEach((v, i) => { if (v) on.push(i + slab, i - slab); });
                   w.setVoxels(on, 1); }"""
    )
    three_d = lesions(page)
    assert len(three_d) == 1 and three_d[0]["count"] == 3 * found[0]["count"]
    page.screenshot(path=str(screens_dir / "workspace_lesion.png"), full_page=True)
    page.keyboard.press("x")
    assert ws.get_attribute("data-tool") == "erase-lesion"
    page.mouse.click(at["x"] + 4, at["y"])
    page.wait_for_selector('[data-testid="workspace"][data-lesions="0"]')
    assert page.evaluate("qsmWorkspace.mask.every(x => x === 0)")
    page.keyboard.press("Control+z")
    page.wait_for_selector('[data-testid="workspace"][data-lesions="1"]')
    assert lesions(page)[0]["count"] == three_d[0]["count"] and lesions(page)[0]["vote"] == "wm"

    # Help overlay, layouts.
    page.keyboard.press("?")
    assert page.locator('[data-testid="help"]').is_visible()
    assert "erase a whole lesion" in page.inner_text('[data-testid="help"]')
    page.keyboard.press("Escape")
    assert not page.locator('[data-testid="help"]').is_visible()
    page.select_option('[data-testid="layout"]', "hero")
    page.locator('[data-panel="2"] canvas').click()
    assert page.locator('[data-panel="2"]').get_attribute("class").split().count("selected") == 1
    page.select_option('[data-testid="layout"]', "mpr")
    assert page.locator('[data-panel="0"]').is_hidden()
    assert page.evaluate("qsmWorkspace.viewers[2].nv.opts.sliceType") == 3


def test_an_admin_sees_the_raters_mask_read_only(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    assignment, series = make_case(session, rater, admin)
    page = logged_in_page(admin)
    page.set_viewport_size(VIEWPORT)
    save_revision(assignment, rater, mask_bytes(RAS, (20, 22, 10), (21, 22, 10)), [
        {"number": 4, "anchor_mm": world(RAS, (20, 22, 10)), "vote": "cortical", "confidence": 2, "note": "x"}
    ])
    open_case(page, live_server, assignment)
    assert page.get_attribute('[data-testid="workspace"]', "data-read-only") == "1"
    assert page.locator('[data-testid="tools"]').is_hidden()
    assert page.locator('[data-testid="save"]').is_hidden()
    assert page.evaluate("qsmWorkspace.viewers.every(v => !v.nv.opts.drawingEnabled)")
    assert [(l["number"], l["count"], l["vote"]) for l in lesions(page)] == [(4, 2, "cortical")]
    assert page.locator('[data-testid="vote-4"]').is_disabled()
    page.keyboard.press("p")
    assert page.get_attribute('[data-testid="workspace"]', "data-tool") == "navigate"


def test_a_mask_keeps_its_voxels_on_a_flipped_oblique_grid(logged_in_page, live_server, media_root, session, rater, admin) -> None:
    affine = oblique_flipped()
    assignment, series = make_case(session, rater, admin, affine)
    page = logged_in_page(rater)
    page.set_viewport_size(VIEWPORT)
    # Loading: a saved mask with one voxel lands on that voxel's world position.
    save_revision(assignment, rater, mask_bytes(affine, (5, 30, 12)), [])
    open_case(page, live_server, assignment)
    loaded = page.evaluate("mm => qsmWorkspace.indexOfMm(mm)", world(affine, (5, 30, 12)))
    assert page.evaluate("i => [qsmWorkspace.mask[i], qsmWorkspace.mask.reduce((s, v) => s + v, 0)]", loaded) == [1, 1]
    assert lesions(page)[0]["anchor"] == pytest.approx(world(affine, (5, 30, 12)), abs=1e-3)

    # Drawing: one pen click (size 1) near voxel (17, 9, 6), found by its world mm. NiiVue shows
    # an oblique grid unresampled, so the voxel under the click is read back from the bitmap:
    # the saved file must hold exactly the file voxel at that bitmap voxel's world position.
    near = (17, 9, 6)
    page.select_option('[data-testid="pen-size"]', "1")
    page.evaluate("mm => qsmWorkspace.setCrosshairMm(mm)", world(affine, near))
    at = page.evaluate("mm => qsmWorkspace.screenOfMm(mm, 1)", world(affine, near))
    page.mouse.click(at["x"], at["y"])
    page.wait_for_selector('[data-testid="workspace"][data-lesions="2"]')
    drawn_mm = page.evaluate(
        "i => qsmWorkspace.grid.mm(qsmWorkspace.grid.ijk(qsmWorkspace.mask.findIndex((v, j) => v && j !== i)))", loaded
    )
    pen = tuple(int(v) for v in np.rint(np.linalg.solve(affine, [*drawn_mm, 1.0])[:3]))
    assert np.allclose(world(affine, pen), drawn_mm, atol=1e-3)  # a voxel centre of the file grid
    assert max(abs(a - b) for a, b in zip(pen, near)) <= 2
    # ... and one through the page's API, by world mm.
    page.evaluate("mm => qsmWorkspace.setVoxels([qsmWorkspace.indexOfMm(mm)])", world(affine, (30, 40, 2)))
    voxels = [(5, 30, 12), pen, (30, 40, 2)]

    image = snapshot_image(page)
    data = np.asarray(image.dataobj)
    assert data.shape == SHAPE
    assert np.allclose(image.affine, affine, atol=1e-3)
    assert sorted(map(tuple, np.argwhere(data > 0).tolist())) == sorted(voxels)
    anchors = sorted(l["anchor"] for l in page.evaluate("qsmWorkspace.getSnapshot().then(s => s.lesions.map(l => ({anchor: l.anchor_mm})))"))
    expected = sorted(world(affine, v) for v in voxels)
    assert np.allclose(anchors, expected, atol=1e-3)

    # Loading the saved bytes back puts the mask on the same voxels.
    page.evaluate(
        "(() => qsmWorkspace.getSnapshot().then(s => qsmWorkspace.loadMaskBytes(s.nifti.buffer.slice(s.nifti.byteOffset, s.nifti.byteOffset + s.nifti.byteLength))))()"
    )
    for v in voxels:
        assert page.evaluate("mm => qsmWorkspace.mask[qsmWorkspace.indexOfMm(mm)]", world(affine, v)) == 1
    assert page.evaluate("qsmWorkspace.mask.reduce((s, v) => s + v, 0)") == 3

    # Saving (Ctrl+S, through annotate/saving.js): the server's stored mask holds the same file
    # voxels, and its lesion table (authoritative) keeps the numbers; a reload shows them again.
    page.select_option('[data-testid="vote-1"]', "cortical")
    page.locator('[data-panel="0"] canvas').focus()
    page.keyboard.press("Control+s")
    page.wait_for_selector('[data-testid="save-state"][data-state="saved"]', timeout=20_000)
    assignment.refresh_from_db()
    revision = assignment.latest_revision
    with revision.file.open("rb") as f:
        stored = nib.Nifti1Image.from_bytes(gzip.decompress(f.read()))
    assert sorted(map(tuple, np.argwhere(np.asarray(stored.dataobj) > 0).tolist())) == sorted(voxels)
    table = {l["number"]: l for l in revision.lesions}
    assert table[1]["vote"] == "cortical" and len(table) == 3
    assert np.allclose(table[1]["anchor_mm"], world(affine, (5, 30, 12)), atol=1e-3)
    page.reload()
    page.wait_for_selector('[data-testid="workspace"][data-ready="1"]', timeout=60_000)
    for v in voxels:
        assert page.evaluate("mm => qsmWorkspace.mask[qsmWorkspace.indexOfMm(mm)]", world(affine, v)) == 1
    assert sorted((l["number"], l["vote"]) for l in lesions(page)) == sorted((n, l["vote"]) for n, l in table.items())
