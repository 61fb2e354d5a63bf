// Reliability curves of the models page: <canvas data-reliability="ID"> with the curve in
// <script id="ID" type="application/json">{"predicted": [...], "observed": [...], "counts": [...]}.
// Redrawn after htmx swaps the runs panel (it polls while a run is training).
(function () {
  "use strict";

  function draw(canvas) {
    if (typeof Chart === "undefined") return;
    var source = document.getElementById(canvas.dataset.reliability);
    if (!source) return;
    var curve = JSON.parse(source.textContent);
    var points = curve.predicted.map(function (p, i) {
      return { x: p, y: curve.observed[i], n: curve.counts[i] };
    });
    var existing = Chart.getChart(canvas);
    if (existing) existing.destroy();
    new Chart(canvas, {
      type: "scatter",
      data: {
        datasets: [
          { label: "Observed rate", data: points, showLine: true, borderColor: "#3454d1",
            backgroundColor: "#3454d1", pointRadius: 4 },
          { label: "Perfect calibration", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true,
            borderColor: "#9aa3b2", borderDash: [4, 4], pointRadius: 0 },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { min: 0, max: 1, title: { display: true, text: "Mean predicted score" } },
          y: { min: 0, max: 1, title: { display: true, text: "Share who did it" } },
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) {
                var n = item.raw.n === undefined ? "" : " (" + item.raw.n + " customers)";
                return item.raw.x.toFixed(2) + " → " + item.raw.y.toFixed(2) + n;
              },
            },
          },
        },
      },
    });
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-reliability]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
