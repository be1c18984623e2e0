// The bus's day: the SOC chart (uPlot) with the reserve lines and each accepted plan's
// projection, in the municipality's time zone. Data from #day-data (no inline script: CSP).
(function () {
  "use strict";
  const holder = document.getElementById("soc-chart");
  const data = document.getElementById("day-data");
  if (!holder || !data || typeof uPlot === "undefined") return;
  const d = JSON.parse(data.dataset.chart);
  const tables = [d.soc];
  const series = [{}, {label: d.labels.soc, stroke: "#0b5cad", width: 2}];
  const edges = [d.start, d.end];
  if (d.reserve !== null) {
    tables.push([edges, [d.reserve, d.reserve]]);
    series.push({label: d.labels.reserve, stroke: "#c62828", dash: [6, 4], spanGaps: true});
  }
  if (d.threshold !== null) {
    tables.push([edges, [d.threshold, d.threshold]]);
    series.push({label: d.labels.threshold, stroke: "#b26a00", dash: [2, 4], spanGaps: true});
  }
  const colours = ["#1a7f37", "#6f42c1", "#d63384", "#20c997"];
  d.projections.forEach(function (p, i) {
    tables.push([p.t, p.soc]);
    series.push({label: p.label, stroke: colours[i % colours.length], dash: [4, 2],
                 spanGaps: true});
  });
  const joined = uPlot.join(tables);
  const width = Math.max(320, holder.clientWidth || 900);
  const chart = new uPlot({
    width: width, height: 300, series: series,
    tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), d.tz); },
    scales: {x: {time: true, min: d.start, max: d.end}, y: {range: [0, 100]}},
    axes: [{}, {label: "SOC %"}],
  }, joined, holder);
  holder.dataset.ready = "yes";
  window.addEventListener("resize", function () {
    chart.setSize({width: Math.max(320, holder.clientWidth), height: 300});
  });
})();
