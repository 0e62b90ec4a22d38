// The dashboard page: hash routes, each rendered from the JSON API under ./api (relative URLs only).
"use strict";

const STATES = ["waiting", "prioritized", "active", "delayed", "completed", "failed", "paused"];
const CLEANABLE = ["waiting", "prioritized", "delayed", "completed", "failed", "paused"];
const REFRESH_MS = 2000;
const view = document.getElementById("view");
let refreshTimer = null;
let paused = false;
let cleanChoice = {state: "completed", grace: 0};  // kept across the overview's refreshes

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }
function json(value) { return esc(JSON.stringify(value, null, 2)); }

async function api(path, options = {}) {
  const init = {method: options.method || "GET", headers: {Accept: "application/json"}};
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch("api/" + path, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
    throw new Error(detail || response.statusText);
  }
  return body;
}

function flash(message) {
  const box = document.getElementById("flash");
  box.textContent = message;
  setTimeout(() => { if (box.textContent === message) box.textContent = ""; }, 4000);
}

async function act(path, method, message, body) {
  try {
    const result = await api(path, {method, body});
    flash(message + (result.count != null ? ` (${result.count})` : ""));
    await route();
  } catch (error) {
    flash("Error: " + error.message);
  }
}

// ---- header: paused flag and pause / resume ----
function showPaused(isPaused) {
  paused = isPaused;
  const badge = document.getElementById("queue-state");
  badge.textContent = isPaused ? "paused" : "running";
  badge.className = "badge" + (isPaused ? " paused" : "");
  document.getElementById("toggle-pause").textContent = isPaused ? "Resume queue" : "Pause queue";
}
document.getElementById("toggle-pause").addEventListener("click", () =>
  paused ? act("resume", "POST", "Queue resumed") : act("pause", "POST", "Queue paused"));
document.getElementById("find").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = document.getElementById("find-id").value.trim();
  if (id) location.hash = "#/job/" + encodeURIComponent(id);
});

// An `every` scheduler's milliseconds in the largest unit that divides them (as `quickdapp schedules`).
function interval(ms) {
  const units = [["d", 86400000], ["h", 3600000], ["m", 60000], ["s", 1000]];
  const [unit, size] = units.find(([, size]) => ms % size === 0) || ["ms", 1];
  return `${ms / size}${unit}`;
}

// ---- overview ----
async function renderOverview() {
  const o = await api("overview");
  showPaused(o.paused);
  const cards = STATES.map((s) =>
    `<a class="card ${s}" href="#/jobs/${s}" data-testid="count-${s}"><span class="n">${o.counts[s] ?? 0}</span><span class="l">${s}</span></a>`).join("");
  const warnings = o.warnings.map((w) => `<div class="warning" data-testid="warning">${esc(w)}</div>`).join("");
  const schedulers = o.schedulers.length
    ? `<table><tr><th>key</th><th>type</th><th>pattern or interval</th><th>next run</th><th>data</th></tr>` +
      o.schedulers.map((s) => `<tr><td>${esc(s.key)}</td><td>${esc(s.type)}</td><td>${s.every ? `every ${esc(interval(s.every))}` : `<code>${esc(s.pattern)}</code> ${esc(s.tz || "")}`}</td><td>${when(s.next_run)}</td><td><code>${esc(JSON.stringify(s.data))}</code></td></tr>`).join("") +
      `</table>`
    : `<p class="muted">No job schedulers.</p>`;
  const redis = o.redis.ok ? `Redis ${esc(o.redis.version)}, maxmemory-policy ${esc(o.redis.maxmemory_policy)}` : `Redis down: ${esc(o.redis.error)}`;
  view.innerHTML = `
    <h2>Overview</h2>
    ${warnings}
    <div class="cards">${cards}</div>
    <p><span data-testid="workers">${o.workers.length}</span> live worker(s)${o.workers.length ? ": " + o.workers.map((w) => `<code>${esc(w.name)}</code>`).join(", ") : ""} · ${redis}</p>
    <div class="row">
      <button data-testid="retry-all" id="retry-all">Retry all failed</button>
      <label>Clean <select id="clean-state">${CLEANABLE.map((s) => `<option ${s === cleanChoice.state ? "selected" : ""}>${s}</option>`).join("")}</select></label>
      <label>older than <input id="clean-grace" type="number" min="0" value="${cleanChoice.grace}" class="narrow"> ms</label>
      <button class="danger" id="clean">Clean</button>
    </div>
    <h3>Job schedulers</h3>${schedulers}`;
  document.getElementById("retry-all").onclick = () => act("retry-failed", "POST", "Retried failed jobs");
  document.getElementById("clean-state").onchange = (e) => { cleanChoice.state = e.target.value; };
  document.getElementById("clean-grace").onchange = (e) => { cleanChoice.grace = Number(e.target.value || 0); };
  document.getElementById("clean").onclick = () => {
    const state = document.getElementById("clean-state").value;
    const grace = Number(document.getElementById("clean-grace").value || 0);
    if (confirm(`Remove ${state} jobs older than ${grace} ms?`)) {
      act("clean", "POST", `Cleaned ${state} jobs`, {state, grace_ms: grace, limit: 0});
    }
  };
  return true;
}

// ---- job lists ----
async function renderJobs(state, page) {
  const p = await api(`jobs?state=${state}&page=${page}&page_size=20`);
  const pages = Math.max(1, Math.ceil(p.total / p.page_size));
  const tabs = STATES.map((s) => `<a href="#/jobs/${s}" class="${s === state ? "on" : ""}">${s}</a>`).join("");
  const rows = p.jobs.map((j) => `<tr data-testid="job-row">
      <td><a href="#/job/${encodeURIComponent(j.id)}">${esc(j.id)}</a></td><td>${esc(j.type)}</td>
      <td>${esc(j.user_id ?? "")}</td><td>${j.attempts_made}</td><td>${j.priority}</td>
      <td>${when(j.created_at)}</td><td>${when(j.finished_at)}</td><td>${esc(j.failed_reason || "")}</td></tr>`).join("");
  view.innerHTML = `
    <h2>Jobs</h2><div class="tabs">${tabs}</div>
    <p><b data-testid="list-total">${p.total}</b> ${state} job(s)</p>
    <table><tr><th>id</th><th>type</th><th>user</th><th>attempts</th><th>priority</th><th>created</th><th>finished</th><th>failed reason</th></tr>${rows}</table>
    <div class="row">
      ${page > 1 ? `<a href="#/jobs/${state}/${page - 1}">← newer</a>` : ""}
      <span class="muted">page ${page} of ${pages}</span>
      ${page < pages ? `<a href="#/jobs/${state}/${page + 1}" data-testid="next-page">older →</a>` : ""}
    </div>`;
  return true;
}

// ---- one job ----
async function renderJob(id) {
  let j;
  try {
    j = await api("jobs/" + encodeURIComponent(id));
  } catch (error) {
    view.innerHTML = `<h2>Job ${esc(id)}</h2><div class="error" data-testid="job-error">${esc(error.message)}</div>`;
    return false;
  }
  const actions = [];
  if (j.state === "failed") actions.push(`<button class="primary" data-testid="retry" id="retry">Retry</button>`);
  if (j.state === "delayed") actions.push(`<button class="primary" data-testid="promote" id="promote">Run now</button>`);
  // Active too: the server refuses (409) while a worker holds the job's lock.
  actions.push(`<button class="danger" data-testid="remove" id="remove">Remove</button>`);
  const unreadable = j.unreadable.length
    ? `<div class="warning" data-testid="job-unreadable">Not valid JSON, shown as stored: ${esc(j.unreadable.join(", "))}</div>`
    : "";
  view.innerHTML = `
    <h2>Job <code>${esc(j.id)}</code> · ${esc(j.type)} · <span data-testid="job-state">${esc(j.state)}</span></h2>
    <div class="row">${actions.join("")}</div>
    ${unreadable}
    <dl>
      <dt>user</dt><dd>${esc(j.user_id ?? "—")}</dd>
      <dt>attempts</dt><dd>${j.attempts_made} made, ${j.attempts_started} started, of ${j.max_attempts}</dd>
      <dt>priority</dt><dd>${j.priority}</dd><dt>delay</dt><dd>${j.delay_ms} ms</dd>
      <dt>progress</dt><dd>${esc(JSON.stringify(j.progress))}</dd>
      <dt>created</dt><dd>${when(j.created_at)}</dd><dt>processed</dt><dd>${when(j.processed_at)}</dd>
      <dt>finished</dt><dd>${when(j.finished_at)}</dd>
      <dt>failed reason</dt><dd data-testid="failed-reason">${esc(j.failed_reason || "—")}</dd>
    </dl>
    <h3>Data</h3><pre data-testid="job-data">${json(j.data)}</pre>
    <h3>Return value</h3><pre data-testid="return-value">${json(j.return_value)}</pre>
    <h3>Options</h3><pre>${json(j.options)}</pre>
    <h3>Stack traces</h3><pre>${esc(Array.isArray(j.stacktrace) ? j.stacktrace.join("\n\n") : j.stacktrace) || "—"}</pre>
    <h3>Logs</h3><pre>${esc(j.logs.join("\n")) || "—"}</pre>`;
  const path = "jobs/" + encodeURIComponent(j.id);
  const bind = (button, action) => { const b = document.getElementById(button); if (b) b.onclick = action; };
  bind("retry", () => act(path + "/retry", "POST", "Job retried"));
  bind("promote", () => act(path + "/promote", "POST", "Job promoted"));
  bind("remove", async () => {
    if (!confirm("Remove this job?")) return;
    await act(path, "DELETE", "Job removed");
    location.hash = "#/jobs/" + j.state;
  });
  return true;
}

// ---- add a job ----
async function renderAdd() {
  const o = await api("overview");
  showPaused(o.paused);
  const options = o.job_types.map((t) => `<option value="${esc(t.name)}">${esc(t.name)} (priority ${t.priority})</option>`).join("");
  view.innerHTML = `
    <h2>Add a job</h2>
    <form id="add-form" autocomplete="off">
      <div class="row"><label>Type <select name="type" id="add-type" data-testid="add-type">${options}</select></label>
        <label>User id <input name="user_id" id="add-user" type="number" min="0" max="9223372036854775807" step="1" class="narrow"></label>
        <label>Delay <input name="delay_ms" id="add-delay" type="number" min="0" max="31536000000" step="1" class="narrow"> ms</label></div>
      <label>Data (JSON)<textarea name="data" id="add-data" data-testid="add-data">{}</textarea></label>
      <p class="muted" id="add-schema"></p>
      <div id="add-error"></div>
      <button class="primary" type="submit" data-testid="add-submit">Add job</button>
    </form>`;
  const select = document.getElementById("add-type");
  const describe = () => {
    const t = o.job_types.find((x) => x.name === select.value);
    document.getElementById("add-schema").textContent = t ? `${t.description} · schema: ${JSON.stringify(t.data_schema.properties || {})}` : "";
  };
  select.onchange = describe;
  describe();
  document.getElementById("add-form").onsubmit = async (event) => {
    event.preventDefault();
    const errorBox = document.getElementById("add-error");
    errorBox.innerHTML = "";
    let data;
    try {
      data = JSON.parse(document.getElementById("add-data").value || "{}");
    } catch (error) {
      errorBox.innerHTML = `<div class="error" data-testid="add-error">data is not valid JSON: ${esc(error.message)}</div>`;
      return;
    }
    const user = document.getElementById("add-user").value;
    const delay = document.getElementById("add-delay").value;
    try {
      const made = await api("jobs", {method: "POST", body: {
        type: select.value, data, user_id: user ? Number(user) : null, delay_ms: delay ? Number(delay) : null}});
      flash("Job added: " + made.id);
      location.hash = "#/job/" + encodeURIComponent(made.id);
    } catch (error) {
      errorBox.innerHTML = `<div class="error" data-testid="add-error">${esc(error.message)}</div>`;
    }
  };
  return false;  // a form being filled in must not be redrawn under the user
}

// ---- audit ----
function chart(series) {
  const w = 900, h = 160, pad = 24;
  const max = Math.max(1, ...series.map((p) => p.completed + p.failed));
  const step = (w - pad) / Math.max(1, series.length);
  const bars = series.map((p, i) => {
    const x = pad + i * step, ok = (p.completed / max) * (h - pad), bad = (p.failed / max) * (h - pad);
    return `<rect x="${x}" y="${h - pad - ok}" width="${Math.max(1, step - 1)}" height="${ok}" fill="#1f8a4c"><title>${when(p.start)}: ${p.completed} completed</title></rect>` +
      `<rect x="${x}" y="${h - pad - ok - bad}" width="${Math.max(1, step - 1)}" height="${bad}" fill="#c23a3a"><title>${when(p.start)}: ${p.failed} failed</title></rect>`;
  }).join("");
  const first = series[0], last = series[series.length - 1];
  return `<svg viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="attempts over time" data-testid="audit-chart">
    <line x1="${pad}" y1="${h - pad}" x2="${w}" y2="${h - pad}" stroke="#ccc"/>
    <text x="0" y="10">${max}</text><text x="0" y="${h - pad}">0</text>
    ${bars}
    <text x="${pad}" y="${h - 6}">${first ? when(first.start) : ""}</text>
    <text x="${w - 140}" y="${h - 6}">${last ? when(last.start) : ""}</text></svg>`;
}

async function renderAudit(query) {
  const params = new URLSearchParams(query);
  const filters = ["type", "status", "user_id", "since", "until"];
  const history = new URLSearchParams();
  filters.forEach((f) => { if (params.get(f)) history.set(f, f === "since" || f === "until" ? new Date(params.get(f)).toISOString() : params.get(f)); });
  // Pages by cursor (older: before=, newer: after=): as fast a million rows back as at the top.
  ["before", "after"].forEach((c) => { if (params.get(c)) history.set(c, params.get(c)); });
  history.set("limit", "50");
  const metricsQuery = new URLSearchParams();
  ["type", "since", "until"].forEach((f) => { if (history.get(f)) metricsQuery.set(f, history.get(f)); });
  const [page, metrics] = await Promise.all([api("audit/history?" + history), api("audit/metrics?" + metricsQuery)]);
  const pct = (x) => (x * 100).toFixed(1) + "%";
  // From the hourly histograms: within 4.4 % of the exact value.
  const approx = (m) => (m.exact_percentiles ? "" : `<span title="from hourly histograms, within 4.4 %">≈</span>`);
  const typeRows = metrics.types.map((m) => `<tr data-testid="metric-row"><td>${esc(m.type)}</td><td>${m.count}</td><td>${m.completed}</td><td>${m.failed}</td>
      <td>${pct(m.success_rate)}</td><td>${approx(m)}${m.p50_ms.toFixed(0)} ms</td><td>${approx(m)}${m.p95_ms.toFixed(0)} ms</td></tr>`).join("");
  const rows = page.items.map((r) => `<tr data-testid="audit-row"><td><a href="#/job/${encodeURIComponent(r.job_id)}">${esc(r.job_id)}</a></td>
      <td>${r.attempt}</td><td>${esc(r.type)}</td><td>${esc(r.user_id ?? "")}</td><td>${esc(r.status)}</td>
      <td>${when(r.started_at)}</td><td>${r.duration_ms} ms</td><td>${esc((r.error || "").split("\n").filter(Boolean).pop() || "")}</td></tr>`).join("");
  const v = (f) => esc(params.get(f) || "");
  const link = (cursor, newer) => {
    const q = new URLSearchParams(params);
    q.delete("before"); q.delete("after"); q.delete("offset");
    q.set(newer ? "after" : "before", cursor);
    return "#/audit?" + q;
  };
  const total = page.total_exact ? page.total.toLocaleString() : page.total.toLocaleString() + "+";
  view.innerHTML = `
    <h2>Audit trail</h2>
    <form id="audit-filters" class="row">
      <input name="type" placeholder="type" value="${v("type")}">
      <select name="status"><option value="">any status</option>${["completed", "failed"].map((s) => `<option ${params.get("status") === s ? "selected" : ""}>${s}</option>`).join("")}</select>
      <input name="user_id" type="number" placeholder="user id" value="${v("user_id")}" class="narrow">
      <label>from <input name="since" type="datetime-local" value="${v("since")}"></label>
      <label>to <input name="until" type="datetime-local" value="${v("until")}"></label>
      <button type="submit">Filter</button>
    </form>
    <h3>Per type, ${when(metrics.since)} – ${when(metrics.until)}</h3>
    <table><tr><th>type</th><th>attempts</th><th>completed</th><th>failed</th><th>success</th><th>p50</th><th>p95</th></tr>${typeRows}</table>
    <h3>Attempts over time <span class="muted">(green completed, red failed; ${metrics.bucket_seconds} s per bar)</span></h3>
    ${chart(metrics.series)}
    <h3>History <span class="muted">(<span data-testid="audit-total">${total}</span> rows)</span></h3>
    <table><tr><th>job</th><th>attempt</th><th>type</th><th>user</th><th>status</th><th>started</th><th>duration</th><th>error</th></tr>${rows}</table>
    <div class="row">${page.newer ? `<a href="${link(page.newer, true)}" data-testid="audit-newer">← newer</a>` : ""}
      ${page.older ? `<a href="${link(page.older, false)}" data-testid="audit-older">older →</a>` : ""}</div>`;
  document.getElementById("audit-filters").onsubmit = (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    new FormData(event.target).forEach((value, key) => { if (value) q.set(key, value); });
    location.hash = "#/audit?" + q;
  };
  return false;
}

// ---- routing and refresh ----
async function route() {
  clearTimeout(refreshTimer);
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let refresh = false;
  try {
    if (parts[0] === "jobs") refresh = await renderJobs(STATES.includes(parts[1]) ? parts[1] : "waiting", Number(parts[2] || 1));
    else if (parts[0] === "job") refresh = await renderJob(parts.slice(1).join("/"));
    else if (parts[0] === "add") refresh = await renderAdd();
    else if (parts[0] === "audit") refresh = await renderAudit(query || "");
    else refresh = await renderOverview();
    if (parts.length && parts[0] !== "add") api("overview").then((o) => showPaused(o.paused)).catch(() => {});
  } catch (error) {
    view.innerHTML = `<div class="error">${esc(error.message)}</div>`;
    refresh = true;
  }
  if (refresh) refreshTimer = setTimeout(route, REFRESH_MS);
}
window.addEventListener("hashchange", route);
route();
