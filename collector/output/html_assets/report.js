// The HTML report's charts (collector/output/html.py inlines this file). Chart.js 4.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const summary = data.summary;
  const figures = {};
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;
  const interval = (summary.series && summary.series.interval) || summary.trend.interval;
  const cut = interval === "hour" ? 13 : 10;
  const label = (iso) => iso.slice(0, cut).replace("T", " ") + (interval === "hour" ? ":00" : "");
  const bucketOf = (iso) => label(new Date(iso).toISOString());
  const sum = (values) => values.reduce((a, b) => a + b, 0);

  // Deletions over time, stacked by category (UTC), with the incidents marked.
  const byCategory = summary.series ? summary.series.by_category : [];
  const buckets = [...new Set(byCategory.map((c) => bucketOf(c.start)))].sort();
  const categories = Object.keys(data.colours).filter((c) => byCategory.some((x) => x.category === c));
  const datasets = categories.map((category) => {
    const values = buckets.map(() => 0);
    for (const item of byCategory) {
      if (item.category === category) values[buckets.indexOf(bucketOf(item.start))] += item.count;
    }
    figures["trend:" + category] = sum(values);
    return {
      type: "bar", label: category + (data.routine_categories.includes(category) ? " (routine)" : ""),
      data: values, backgroundColor: data.colours[category], stack: "deletions",
    };
  });
  const totals = buckets.map((_, i) => sum(datasets.map((d) => d.data[i])));
  figures["trend:total"] = sum(totals);
  const markers = buckets.map(() => null);
  const incidentText = buckets.map(() => []);
  for (const incident of summary.incidents) {
    const b = bucketOf(incident.start);
    let i = buckets.indexOf(b);
    if (i < 0) { buckets.push(b); buckets.sort(); i = buckets.indexOf(b); }
    markers[i] = totals[i] || 0;
    incidentText[i].push(incident.summary);
  }
  figures["incidents:markers"] = summary.incidents.length;
  datasets.push({
    type: "line", label: "incident", data: markers, showLine: false, pointStyle: "triangle",
    pointRadius: 9, pointBackgroundColor: "#000", borderColor: "#000", order: -1,
  });
  new Chart(document.getElementById("chart-trend"), {
    data: { labels: buckets, datasets },
    options: {
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "deletions" } } },
      plugins: {
        tooltip: { callbacks: { afterBody: (items) => (items.length ? incidentText[items[0].dataIndex] : []) } },
      },
    },
  });

  // Reasons, as an operator reads them; routine ones pale.
  const reasons = summary.by_reason;
  new Chart(document.getElementById("chart-reasons"), {
    type: "bar",
    data: {
      labels: reasons.map((r) => r.reason),
      datasets: [{
        label: "deletions", data: reasons.map((r) => r.count),
        backgroundColor: reasons.map((r) => data.colours[r.category] || "#7f7f7f"),
      }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  });
  for (const r of reasons) figures["reason:" + r.reason_code] = r.count;

  // Top flapping peers (disruptive deletions unless --include-routine).
  const peers = summary.top_peers;
  new Chart(document.getElementById("chart-peers"), {
    type: "bar",
    data: {
      labels: peers.map((p) => p.peer),
      datasets: [{ label: "deletions", data: peers.map((p) => p.deletions), backgroundColor: "#d62728" }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  });
  for (const p of peers) figures["peer:" + p.peer] = p.deletions;

  // Heat map: deletions per device (rows, by site) and hour or day (columns).
  const cells = summary.series ? summary.series.by_device : [];
  const site = Object.fromEntries(data.devices.map((d) => [d.name, d.site || "-"]));
  const rows = [...new Set(cells.map((c) => c.device))].sort((a, b) =>
    (site[a] + " " + a).localeCompare(site[b] + " " + b));
  const columns = [...new Set(cells.map((c) => bucketOf(c.start)))].sort();
  const peak = Math.max(1, ...cells.map((c) => c.count));
  const heat = document.getElementById("chart-heat");
  heat.parentNode.style.height = Math.max(160, 22 * rows.length + 80) + "px";
  new Chart(heat, {
    type: "matrix",
    data: {
      datasets: [{
        label: "deletions",
        data: cells.map((c) => ({ x: bucketOf(c.start), y: c.device, v: c.count })),
        backgroundColor: (ctx) => {
          const v = ctx.raw ? ctx.raw.v : 0;
          return "rgba(214,39,40," + (0.15 + 0.85 * v / peak).toFixed(3) + ")";
        },
        width: ({ chart }) => Math.max(2, (chart.chartArea || {}).width / Math.max(1, columns.length) - 1),
        height: ({ chart }) => Math.max(2, (chart.chartArea || {}).height / Math.max(1, rows.length) - 1),
      }],
    },
    options: {
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { title: (items) => items[0].raw.y + " (" + site[items[0].raw.y] + ")",
                                label: (item) => item.raw.x + ": " + item.raw.v } },
      },
      scales: {
        x: { type: "category", labels: columns, offset: true, grid: { display: false } },
        y: { type: "category", labels: rows, offset: true, grid: { display: false },
             ticks: { callback: (value, index) => rows[index] + " · " + site[rows[index]] } },
      },
    },
  });
  figures["heat:total"] = sum(cells.map((c) => c.count));
  figures["heat:devices"] = rows.length;

  // Key figures (the cards) from the JSON, shown and recorded.
  const t = summary.totals;
  const cards = {
    disruptive: summary.include_routine ? t.records : t.disruptive, routine: t.routine,
    devices: t.devices, failed: t.devices_failed, incidents: summary.incidents.length, gaps: t.gaps,
  };
  for (const [key, value] of Object.entries(cards)) {
    document.querySelector('[data-card="' + key + '"]').textContent = String(value);
    figures["card:" + key] = value;
  }
  document.body.dataset.figures = JSON.stringify(figures);
  document.body.dataset.rendered = "yes";
})();
