/* Charts of the program dashboard, drawn with the Chart.js shipped in static/vendor (no CDN). The same numbers are
   in the tables next to each canvas, for screen readers and when scripts are off. */
(function () {
  "use strict";
  function start() {
    var source = document.getElementById("analytics-chart-data");
    if (!source || typeof window.Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var common = { responsive: true, maintainAspectRatio: false, animation: reduced ? false : { duration: 300 } };
    var palette = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563", "#db2777"];

    var daily = document.getElementById("chart-daily");
    if (daily) {
      daily.parentNode.style.height = "320px";
      new window.Chart(daily, {
        type: "line",
        data: {
          labels: data.labels,
          datasets: [
            { label: data.text.clicks, data: data.clicks, borderColor: palette[0], backgroundColor: palette[0], yAxisID: "y", tension: 0.2 },
            { label: data.text.signups, data: data.signups, borderColor: palette[1], backgroundColor: palette[1], yAxisID: "y", tension: 0.2 },
            { label: data.text.orders, data: data.orders, borderColor: palette[2], backgroundColor: palette[2], yAxisID: "y", tension: 0.2 },
            { label: data.text.revenue, data: data.revenue.map(Number), borderColor: palette[3], backgroundColor: palette[3], yAxisID: "money", borderDash: [6, 4], tension: 0.2 }
          ]
        },
        options: Object.assign({}, common, {
          interaction: { mode: "index", intersect: false },
          scales: {
            y: { beginAtZero: true, position: "left", ticks: { precision: 0 } },
            money: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } }
          }
        })
      });
    }

    var funnel = document.getElementById("chart-funnel");
    if (funnel) {
      funnel.parentNode.style.minHeight = "220px";
      new window.Chart(funnel, {
        type: "bar",
        data: { labels: data.funnel.labels, datasets: [{ data: data.funnel.values, backgroundColor: palette.slice(0, 4) }] },
        options: Object.assign({}, common, { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } })
      });
    }

    var channels = document.getElementById("chart-channels");
    if (channels) {
      new window.Chart(channels, {
        type: "bar",
        data: { labels: data.channels.labels, datasets: [{ data: data.channels.values, backgroundColor: palette }] },
        options: Object.assign({}, common, { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } })
      });
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
