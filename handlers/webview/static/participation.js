// The participation chart: a stacked bar per cycle, from the JSON the page carries (no inline script).
(function () {
  "use strict";
  var source = document.getElementById("participation-data");
  var canvas = document.getElementById("participation-chart");
  if (!source || !canvas || !window.Chart) {
    return;
  }
  var data = JSON.parse(source.textContent);
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: data.datasets.map(function (d) {
        return { label: d.label, data: d.data, backgroundColor: d.color, stack: "members" };
      })
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { stacked: true },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }
      },
      plugins: { legend: { position: "bottom" } }
    },
    plugins: [{
      id: "rendered",
      afterRender: function (chart) { chart.canvas.setAttribute("data-rendered", "1"); }
    }]
  });
})();
