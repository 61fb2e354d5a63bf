// Charts of campaign and experience results and the marketing dashboard (Chart.js, vendored).
//   <canvas data-results-chart="bands|intervals|bars|stacked-bars|lines|area"
//           data-chart-data="ID" data-unit="%|€|" data-precision="0 (optional)"></canvas>
//   <script id="ID" type="application/json">...</script>   (Django's json_script)
// "bands": {"labels", "arms": [{"label", "rate", "low", "high"}]} – each arm's line with its
// confidence band filled between low and high. "intervals": {"labels", "rate", "low", "high"}
// – each arm's interval as a floating bar, its rate as a mark across it. The others:
// {"labels", "datasets": [{"label", "data"}]}; "area" stacks to 100 (a bandit's allocation
// over time). The control group (campaigns) and the holdout (experiences) are grey.
(function () {
  "use strict";
  var palette = ["#3454d1", "#1f8a4c", "#b7791f", "#c0392b", "#7b4fd6", "#0f8b8d"];
  var controlColor = "#6b7280";

  function colorOf(label, i) {
    return label === "control" || label === "holdout" ? controlColor : palette[i % palette.length];
  }

  function percentText(value) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(2) + "%";
  }

  function intervals(data) {
    var colors = data.labels.map(colorOf);
    return {
      labels: data.labels,
      datasets: [
        {
          type: "bar",
          label: "95% interval",
          data: data.labels.map(function (_, i) {
            return [data.low[i], data.high[i]];
          }),
          backgroundColor: colors.map(function (color) {
            return color + "33";
          }),
          borderColor: colors,
          borderWidth: 1,
          barPercentage: 0.5,
          maxBarThickness: 140,
          interval: true,
        },
        {
          type: "line",
          label: "Conversion rate",
          data: data.rate,
          showLine: false,
          pointStyle: "line",
          // The mark spans its arm's bar (Chart.js lays the bars out first).
          pointRadius: barHalfWidth,
          pointHoverRadius: barHalfWidth,
          pointBorderWidth: 3,
          pointHoverBorderWidth: 3,
          borderColor: colors,
          backgroundColor: colors,
        },
      ],
    };
  }

  function barHalfWidth(context) {
    var bar = context.chart.getDatasetMeta(0).data[context.dataIndex];
    return bar && bar.width ? bar.width / 2 : 20;
  }

  function intervalLabel(item) {
    if (item.dataset.interval) {
      var range = item.raw || [];
      return "95% interval: " + percentText(range[0]) + " to " + percentText(range[1]);
    }
    return "Conversion rate: " + percentText(item.raw);
  }

  function readData(canvas) {
    var source = document.getElementById(canvas.dataset.chartData);
    if (!source) return null;
    try {
      return JSON.parse(source.textContent);
    } catch (err) {
      return null;
    }
  }

  function bands(data) {
    var datasets = [];
    data.arms.forEach(function (arm, i) {
      var color = colorOf(arm.label, i);
      datasets.push({ label: arm.label + " low", data: arm.low, borderWidth: 0, pointRadius: 0, fill: false, band: true });
      datasets.push({ label: arm.label + " 95% band", data: arm.high, borderWidth: 0, pointRadius: 0, backgroundColor: color + "26", fill: "-1", band: true });
      datasets.push({ label: arm.label, data: arm.rate, borderColor: color, backgroundColor: color, borderWidth: 2, pointRadius: 2, fill: false, tension: 0.2 });
    });
    return { labels: data.labels, datasets: datasets };
  }

  function plain(data, kind) {
    data.datasets.forEach(function (dataset, i) {
      var color = colorOf(dataset.label, i);
      dataset.borderColor = color;
      dataset.backgroundColor = kind === "area" ? color + "99" : color;
      dataset.borderWidth = kind === "bars" || kind === "stacked-bars" ? 0 : 2;
      // A line of one or two points is too short to see: larger points then.
      dataset.pointRadius = kind === "lines" ? ((data.labels || []).length <= 2 ? 4 : 2) : 0;
      dataset.fill = kind === "area";
      dataset.spanGaps = true;
      dataset.tension = 0.2;
      // Counts and shares never overshoot between points (below zero, above the peak).
      dataset.cubicInterpolationMode = "monotone";
    });
    return data;
  }

  function draw(canvas) {
    if (typeof Chart === "undefined" || Chart.getChart(canvas)) return;
    var data = readData(canvas);
    if (!data) return;
    var kind = canvas.dataset.resultsChart;
    var unit = canvas.dataset.unit || "";
    var stacked = kind === "stacked-bars" || kind === "area";
    var barred = kind === "bars" || kind === "stacked-bars" || kind === "intervals";
    var tick = function (value) {
      return unit === "%" ? value + "%" : unit ? unit + value : value;
    };
    new Chart(canvas, {
      type: barred ? "bar" : "line",
      data:
        kind === "bands" ? bands(data) : kind === "intervals" ? intervals(data) : plain(data, kind),
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: {
            // An interval chart's arms are its x axis, coloured as everywhere else.
            display: kind !== "intervals",
            labels: {
              filter: function (item, chart) {
                return !chart.datasets[item.datasetIndex].band;
              },
            },
          },
          tooltip: {
            filter: function (item) {
              return !item.dataset.band;
            },
            callbacks: kind === "intervals" ? { label: intervalLabel } : {},
          },
        },
        scales: {
          x: {
            stacked: stacked,
            grid: { display: false },
            ticks: { maxTicksLimit: 10, maxRotation: 0 },
            // Bars sit between ticks; so do the points of a line of one or two days (a test
            // started today), which would otherwise hug the axis.
            offset: barred || (data.labels || []).length <= 2,
          },
          y: {
            stacked: stacked,
            beginAtZero: true,
            max: kind === "area" ? 100 : undefined,
            // data-precision="0" for counts: no ticks between whole numbers.
            ticks: {
              callback: tick,
              precision: canvas.dataset.precision ? Number(canvas.dataset.precision) : undefined,
            },
            grid: { color: "#eef0f3" },
          },
        },
      },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-results-chart]").forEach(draw);
  });
})();
