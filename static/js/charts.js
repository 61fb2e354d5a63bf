// Draws Chart.js charts declared in markup and keeps them current after htmx swaps.
//   <canvas data-chart="line|bar" data-chart-data="ID" data-chart-precision="3"></canvas>
//   (precision: decimals of the y axis' ticks, 0 unless given)
//   <script id="ID" type="application/json">{"labels": [...], "datasets": [{"label", "data"}]}</script>
// The data element may be swapped by htmx (e.g. out of band); the canvas stays, and its chart is
// updated in place so that a refresh does not flicker.
(function () {
  "use strict";
  var palette = ["#3454d1", "#1f8a4c", "#b7791f", "#c0392b", "#7b4fd6", "#0f8b8d"];

  function readData(canvas) {
    var source = document.getElementById(canvas.dataset.chartData);
    if (!source) return null;
    try {
      return JSON.parse(source.textContent);
    } catch (err) {
      return null;
    }
  }

  function styled(data, kind) {
    data.datasets.forEach(function (dataset, i) {
      var color = palette[i % palette.length];
      dataset.borderColor = color;
      dataset.backgroundColor = kind === "line" ? color + "22" : color;
      dataset.borderWidth = kind === "line" ? 2 : 0;
      // A line through one or two points is too short to see: show the points then.
      dataset.pointRadius = kind === "line" && (data.labels || []).length <= 2 ? 3 : 0;
      dataset.pointHoverRadius = 4;
      dataset.fill = kind === "line";
      dataset.tension = 0.25;
    });
    return data;
  }

  function draw(canvas) {
    if (typeof Chart === "undefined") return;
    var data = readData(canvas);
    if (!data) return;
    var kind = canvas.dataset.chart || "line";
    var chart = Chart.getChart(canvas);
    if (chart) {
      chart.data = styled(data, kind);
      chart.update("none");
      return;
    }
    new Chart(canvas, {
      type: kind,
      data: styled(data, kind),
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: data.datasets.length > 1 } },
        scales: {
          x: {
            grid: { display: false },
            ticks: { maxTicksLimit: 12, maxRotation: 0 },
            // Bars always sit between ticks; so do the points of a very short line.
            offset: kind !== "line" || (data.labels || []).length <= 2,
          },
          y: {
            beginAtZero: true,
            ticks: { precision: Number(canvas.dataset.chartPrecision || 0) },
            grid: { color: "#eef0f3" },
          },
        },
      },
    });
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
  document.addEventListener("htmx:oobAfterSwap", drawAll);
})();
