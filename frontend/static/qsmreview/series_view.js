// The series page: one series in the viewer (viewer.js), its window, echo, crosshair value and
// an overlay of another series of the same session. The root element gets data-ready="true"
// once the volume is drawn (and data-overlay="<id>" once an overlay is), for people and tests.
import {
  OVERLAY_COLORMAPS,
  QSM_COLORMAP,
  QSM_DEFAULT_HALF_WINDOW_PPM,
  createViewer,
  formatValue,
  isSusceptibility,
} from "./viewer.js";

const root = document.querySelector('[data-testid="viewer"]');
const config = JSON.parse(document.getElementById("viewer-config").textContent);
const series = config.series;
const $ = (testid) => root.querySelector(`[data-testid="${testid}"]`);

const BASE_COLORMAPS = ["gray", QSM_COLORMAP, "hot", "viridis", "inferno"];
const QSM_PRESETS_PPM = [0.05, 0.1, QSM_DEFAULT_HALF_WINDOW_PPM, 0.3];

function showError(message) {
  const el = $("viewer-error");
  el.textContent = message;
  el.hidden = false;
  root.dataset.ready = "error";
}

function option(value, text, selected = false) {
  const el = document.createElement("option");
  el.value = value;
  el.textContent = text;
  el.selected = selected;
  return el;
}

function button(text, onClick) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = text;
  el.addEventListener("click", onClick);
  return el;
}

function roundForInput(value) {
  return Number.isFinite(value) ? Number(value.toPrecision(4)) : "";
}

async function main() {
  const viewer = await createViewer(document.getElementById("viewer-canvas"), { niivueUrl: root.dataset.niivue });
  window.qsmViewer = viewer; // for the console and tests
  const units = series.units;
  const susceptibility = isSusceptibility(series.kind);
  $("units").textContent = units ? `(${units})` : "";

  const winMin = $("win-min");
  const winMax = $("win-max");
  const colourbar = $("colourbar");
  const colormapSelect = $("colormap");

  function showWindow([min, max]) {
    if (document.activeElement !== winMin) winMin.value = roundForInput(min);
    if (document.activeElement !== winMax) winMax.value = roundForInput(max);
    colourbar.querySelector(".lo").textContent = formatValue(min, units);
    colourbar.querySelector(".hi").textContent = formatValue(max, units);
    root.dataset.calMin = String(min);
    root.dataset.calMax = String(max);
  }
  viewer.onWindow(showWindow);

  function showColormap(name) {
    colourbar.querySelector(".bar").style.background = viewer.colormapGradient(name);
    root.dataset.colormap = name;
  }

  // The value under the crosshair, with units.
  let overlayUnits = "";
  viewer.onLocation(({ mm, vox, value, overlayValue }) => {
    $("value").textContent = formatValue(value, units);
    $("where").textContent = `voxel ${vox.map((v) => Math.round(v)).join(", ")} · ${mm.map((v) => v.toFixed(1)).join(", ")} mm`;
    $("overlay-value").textContent = overlayValue === undefined ? "" : `overlay: ${formatValue(overlayValue, overlayUnits)}`;
  });

  await viewer.loadSeries({ url: series.url, name: series.name, kind: series.kind, units });

  // Window: inputs (a symmetric QSM window stays symmetric when one end is typed) and presets.
  function applyInputs(changed) {
    let min = parseFloat(winMin.value);
    let max = parseFloat(winMax.value);
    if (susceptibility && root.dataset.symmetric === "true") {
      const half = Math.abs(changed === winMin ? min : max);
      [min, max] = [-half, half];
      winMin.value = roundForInput(min);
      winMax.value = roundForInput(max);
    }
    if (!viewer.setWindow(min, max)) winMin.setCustomValidity("min must be below max");
    else winMin.setCustomValidity("");
  }
  winMin.addEventListener("change", () => applyInputs(winMin));
  winMax.addEventListener("change", () => applyInputs(winMax));
  const presets = $("presets");
  if (susceptibility) {
    root.dataset.symmetric = "true";
    for (const half of QSM_PRESETS_PPM) {
      presets.append(button(`±${half} ${units}`, () => viewer.setSymmetricWindow(half)));
    }
    const sym = document.createElement("label");
    sym.innerHTML = '<input type="checkbox" checked data-testid="symmetric"> centred on 0';
    sym.querySelector("input").addEventListener("change", (e) => {
      root.dataset.symmetric = String(e.target.checked);
    });
    presets.append(sym);
  } else {
    presets.append(button("auto (2–98 %)", () => viewer.setWindow(...viewer.rangeOf("robust"))));
    presets.append(button("full range", () => viewer.setWindow(...viewer.rangeOf("full"))));
  }

  // Colour map of the base series.
  const initialMap = susceptibility ? QSM_COLORMAP : "gray";
  for (const name of BASE_COLORMAPS) {
    colormapSelect.append(option(name, name === QSM_COLORMAP ? "diverging (blue–white–red)" : name, name === initialMap));
  }
  colormapSelect.addEventListener("change", () => {
    viewer.setColormap(colormapSelect.value);
    showColormap(colormapSelect.value);
  });
  showColormap(initialMap);

  // Echoes of a 4-D series: first echo by default, a selector for the others.
  if (viewer.frameCount > 1) {
    const fieldset = root.querySelector("fieldset.echo");
    const select = $("echo");
    for (let i = 0; i < viewer.frameCount; i++) {
      const te = series.echo_times_s?.[i];
      select.append(option(String(i), `echo ${i + 1}${te ? ` (TE ${(te * 1000).toFixed(1)} ms)` : ""}`, i === 0));
    }
    select.addEventListener("change", () => viewer.setFrame(Number(select.value)));
    fieldset.hidden = false;
    root.dataset.frames = String(viewer.frameCount);
  }

  // The overlay: the session's other series that this user may see (the server listed them).
  const overlaySelect = $("overlay");
  const byId = new Map(config.overlays.map((s) => [String(s.id), s]));
  for (const s of config.overlays) overlaySelect.append(option(String(s.id), s.title + (s.is_current ? "" : " (superseded)")));
  overlaySelect.disabled = config.overlays.length === 0;
  const overlayColormap = $("overlay-colormap");
  for (const name of OVERLAY_COLORMAPS) overlayColormap.append(option(name, name === QSM_COLORMAP ? "diverging" : name));
  const opacity = $("opacity");
  overlaySelect.addEventListener("change", async () => {
    const chosen = byId.get(overlaySelect.value);
    delete root.dataset.overlay;
    if (!chosen) {
      viewer.removeOverlay();
      return;
    }
    overlayUnits = chosen.units;
    const colormap = isSusceptibility(chosen.kind) ? QSM_COLORMAP : overlayColormap.value || "warm";
    overlayColormap.value = colormap;
    root.dataset.overlayLoading = "true";
    try {
      await viewer.addOverlay({ ...chosen, colormap, opacity: Number(opacity.value) });
      root.dataset.overlay = String(chosen.id);
    } catch (err) {
      showError(`Could not load the overlay: ${err}`);
    } finally {
      delete root.dataset.overlayLoading;
    }
  });
  opacity.addEventListener("input", () => viewer.setOverlayOpacity(Number(opacity.value)));
  overlayColormap.addEventListener("change", () => viewer.setOverlayColormap(overlayColormap.value));

  showWindow(viewer.getWindow());
  root.dataset.ready = "true";
}

main().catch((err) => {
  console.error(err);
  showError(`The viewer could not load this series: ${err?.message || err}`);
});
