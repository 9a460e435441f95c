"""The fleet dashboard served at ``GET /_zeronode/``: one page, no external assets.

It is a view of ``GET /_zeronode/status`` (the same document ``zeronode status --json``
prints), polled every 2 s by a few lines of script; all text goes in through ``textContent``,
so nothing a peer publishes in its metadata can inject markup. Kept in a Python string so it
ships with the package like any module.
"""

DASHBOARD_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zeronode fleet</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
 h1 { font-size: 1.3em; margin: 0 0 .3em; }
 #verdict { font-weight: 600; margin: .5em 0 1em; }
 .healthy { color: #11772d; } .degraded { color: #b3261e; }
 table { border-collapse: collapse; }
 th, td { padding: .3em .8em; text-align: left; border-bottom: 1px solid #ddd; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .alive { color: #11772d; } .suspect { color: #a05a00; }
 .dead, .unknown, .left, .removed { color: #b3261e; }
 #error { color: #b3261e; }
 small { color: #666; }
</style>
</head>
<body>
<h1>zeronode fleet</h1>
<small id="cluster"></small>
<div id="verdict"></div>
<div id="error"></div>
<table>
 <thead><tr><th>node</th><th>address</th><th>state</th><th>last heard</th>
 <th>journal</th><th>lag</th><th>disk used</th><th>disk free</th><th>load</th>
 <th>version</th><th>clock offset</th></tr></thead>
 <tbody id="members"></tbody>
</table>
<script>
"use strict";
function size(n) {
  if (typeof n !== "number") return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}
function secs(v, signed) {
  if (typeof v !== "number") return "-";
  return (signed && v >= 0 ? "+" : "") + v.toFixed(signed ? 3 : 1) + " s";
}
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}
async function refresh() {
  try {
    const response = await fetch("/_zeronode/status", {cache: "no-store"});
    const doc = await response.json();
    document.getElementById("error").textContent = "";
    document.getElementById("cluster").textContent =
      "cluster " + (doc.cluster_id || "-") + " - seen from node " + doc.node_id;
    const verdict = document.getElementById("verdict");
    verdict.textContent = doc.verdict.text;
    verdict.className = doc.verdict.healthy ? "healthy" : "degraded";
    const body = document.getElementById("members");
    body.replaceChildren();
    for (const m of doc.members) {
      const row = body.insertRow();
      cell(row, m.node_id.slice(0, 12) + (m.self ? " (this node)" : ""));
      cell(row, m.address || "-");
      cell(row, m.state, m.state);
      cell(row, m.self ? "self" : secs(m.last_heard), "num");
      cell(row, m.journal_position ?? "-", "num");
      cell(row, m.journal_lag ?? "-", "num");
      cell(row, size(m.disk_used), "num");
      cell(row, size(m.disk_free), "num");
      cell(row, m.load ?? "-", "num");
      cell(row, m.version || "-");
      cell(row, secs(m.clock_offset, true), "num");
    }
  } catch (error) {
    document.getElementById("error").textContent = "cannot reach the agent: " + error;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""
