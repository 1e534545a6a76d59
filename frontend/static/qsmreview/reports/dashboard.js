// The study dashboard's figures: Vega-Lite specs (declarative JSON) drawn by the pinned vega-embed
// (frontend/package.json, copied by scripts/vendor). vega-embed's action menu saves each figure as
// PNG or SVG; tooltips show subject, lesion and value; a click on a consensus lesion opens it.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-figures").textContent);
  const kinds = data.kinds;
  const labelExpr = "[" + kinds.map((k) => JSON.stringify(k)).join(",") + "][datum.value]";
  const xAxis = {
    field: "x", type: "quantitative", title: null,
    scale: { domain: [-0.5, kinds.length - 0.5], nice: false, zero: false },
    axis: { values: kinds.map((_, i) => i), labelExpr: labelExpr, grid: false, labelAngle: 0, labelLimit: 140 },
  };
  const yAxis = (title) => ({ field: "value_ppm", type: "quantitative", title: title });
  const zero = { mark: { type: "rule", strokeDash: [4, 4], color: "#888" }, encoding: { y: { datum: 0 } } };
  const options = (name) => ({
    actions: { export: true, source: false, compiled: false, editor: false },
    downloadFileName: name,
    renderer: "svg",
  });
  const ready = [];

  const lesionSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 520, height: 320,
    data: { values: data.lesions },
    layer: [
      zero,
      {
        transform: [{ filter: "datum.pair != null" }],
        mark: { type: "line", color: "#999", strokeWidth: 1 },
        encoding: { x: xAxis, y: yAxis("Relative susceptibility (ppm)"), detail: { field: "pair" } },
      },
      {
        mark: { type: "point", filled: true, size: 60, cursor: "pointer" },
        encoding: {
          x: xAxis,
          y: yAxis("Relative susceptibility (ppm)"),
          color: { field: "kind", type: "nominal", sort: kinds, legend: null },
          shape: { field: "excluded", type: "nominal", legend: null },
          tooltip: [
            { field: "subject", title: "Subject" },
            { field: "lesion", title: "Lesion" },
            { field: "kind", title: "Type" },
            { field: "value_ppm", title: "Relative susceptibility (ppm)", format: ".4f" },
            { field: "source", title: "Source" },
          ],
        },
      },
    ],
  };
  const patientSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 420, height: 320,
    data: { values: data.patients },
    layer: [
      zero,
      {
        mark: { type: "point", filled: true, size: 60 },
        encoding: {
          x: xAxis, y: yAxis("Patient mean (ppm)"),
          color: { field: "kind", type: "nominal", sort: kinds, legend: null },
          tooltip: [
            { field: "subject", title: "Subject" },
            { field: "kind", title: "Type" },
            { field: "value_ppm", title: "Mean relative susceptibility (ppm)", format: ".4f" },
          ],
        },
      },
    ],
  };
  const agreementSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 420, height: 220,
    data: { values: data.agreement },
    mark: { type: "bar" },
    encoding: {
      y: { field: "pair", type: "nominal", title: null },
      x: { field: "value", type: "quantitative", title: "Detection F1 / mean Dice", scale: { domain: [0, 1] } },
      yOffset: { field: "measure" },
      color: { field: "measure", type: "nominal", title: null },
      tooltip: [
        { field: "pair", title: "Pair" }, { field: "group", title: "Kind" },
        { field: "measure", title: "Measure" }, { field: "value", title: "Value", format: ".3f" },
        { field: "sessions", title: "Sessions" },
      ],
    },
  };

  function draw(id, spec, name, values) {
    const el = document.getElementById(id);
    if (!values.length) {
      el.textContent = "No data.";
      el.dataset.ready = "empty";
      return Promise.resolve(null);
    }
    return vegaEmbed(el, spec, options(name)).then((result) => {
      el.dataset.ready = "drawn";
      return result;
    });
  }

  ready.push(
    draw("fig-lesions", lesionSpec, "fig2a-lesions", data.lesions).then((result) => {
      if (!result) return;
      result.view.addEventListener("click", (event, item) => {
        const url = item && item.datum && item.datum.url;
        if (url) window.location.assign(url);
      });
    }),
    draw("fig-patients", patientSpec, "fig2b-patients", data.patients),
    draw("fig-agreement", agreementSpec, "agreement", data.agreement),
  );

  // The agreement figure's data has no API route of its own: its CSV is made from what is drawn.
  document.getElementById("csv-agreement").addEventListener("click", (event) => {
    event.preventDefault();
    const columns = ["pair", "group", "measure", "value", "sessions"];
    const quote = (v) => (/[",\n]/.test(String(v)) ? '"' + String(v).replace(/"/g, '""') + '"' : String(v));
    const text = [columns.join(",")].concat(data.agreement.map((r) => columns.map((c) => quote(r[c] ?? "")).join(","))).join("\n") + "\n";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    link.download = "agreement.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
  });

  Promise.all(ready).then(
    () => { document.body.dataset.figures = "ready"; },
    (error) => { document.body.dataset.figures = "failed"; console.error(error); },
  );
})();
