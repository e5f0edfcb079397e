// SPDX-License-Identifier: Apache-2.0
// Status page assets. Every value shown comes from the JSON admin API and
// is inserted with textContent (usernames come from clients: never HTML).
#include "controlplane/admin/status_page.h"

namespace turn::cp::status_page {

namespace {

constexpr std::string_view kPage = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dpturn status</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header class="bar">
  <div class="brand"><span class="logo">&#9673;</span> dpturn <span class="muted" id="version"></span></div>
  <div class="conn" id="conn" data-state="connecting"><span class="dot"></span><span id="conn-text">connecting&hellip;</span></div>
  <form method="post" action="/logout"><button class="link" type="submit">Log out</button></form>
</header>
<main>
  <section class="cards" id="summary">
    <div class="card"><div class="label">Realm</div><div class="value" id="realm">&ndash;</div></div>
    <div class="card"><div class="label">Active allocations</div><div class="value" id="allocation-count">&ndash;</div></div>
    <div class="card"><div class="label">Relay threads</div><div class="value" id="threads">&ndash;</div></div>
    <div class="card"><div class="label">Relay addresses</div><div class="value small" id="relay">&ndash;</div></div>
    <div class="card"><div class="label">State Redis</div><div class="value small" id="state-redis">&ndash;</div></div>
    <div class="card"><div class="label">User DB Redis</div><div class="value small" id="userdb-redis">&ndash;</div></div>
    <div class="card"><div class="label">Data planes</div><div class="value small" id="dataplanes">&ndash;</div></div>
  </section>

  <section>
    <h2>Listeners</h2>
    <table id="listeners">
      <thead><tr><th>Transport</th><th>IP</th><th>Port</th><th>State</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section>
    <h2>TURN relay usage <span class="count" id="usage-count"></span></h2>
    <table id="allocations">
      <thead><tr><th>Username</th><th>Transport</th><th>Client address</th><th>Relay address</th>
        <th>Peers (permissions)</th><th>Channels</th><th class="num">To peer</th><th class="num">To client</th>
        <th class="num">Lifetime left</th></tr></thead>
      <tbody></tbody>
    </table>
    <p class="empty" id="allocations-empty">No active allocations.</p>
  </section>

  <section class="two">
    <div>
      <h2>Credentials <span class="count" id="users-count"></span></h2>
      <ul class="chips" id="users"></ul>
      <p class="empty" id="users-empty">No credentials.</p>
      <p class="muted small">Names only. <span class="chip local legend">marked</span> = added through the admin API.</p>
    </div>
    <div>
      <h2>Registered TURN servers <span class="count" id="servers-count"></span></h2>
      <table id="turn-servers">
        <thead><tr><th>Server (probed)</th><th>Client address</th><th>Type</th><th>Username</th>
          <th>Reachable</th><th class="num">Round trip</th><th></th></tr></thead>
        <tbody></tbody>
      </table>
      <p class="empty" id="servers-empty">None registered (POST /api/v1/turn-servers).</p>
    </div>
  </section>
</main>
<footer><span id="updated">not updated yet</span> &middot; refreshes every second from the admin API</footer>
</body>
</html>
)html";

constexpr std::string_view kLoginHead = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dpturn status: log in</title>
<link rel="stylesheet" href="/ui/app.css">
</head>
<body class="login">
<form class="login-box" method="post" action="/login">
  <h1><span class="logo">&#9673;</span> dpturn</h1>
  <p class="muted">turn-control status page</p>
)html";

constexpr std::string_view kLoginTail = R"html(  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
  <button type="submit">Log in</button>
</form>
</body>
</html>
)html";

constexpr std::string_view kJs = R"js('use strict';
// dpturn status page: polls the admin API every second and redraws.
(function () {
  const POLL_MS = 1000;
  const PROBE_EVERY_S = 10;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  function bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i];
  }
  function duration(s) {
    if (s >= 3600) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    if (s >= 60) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    return s + 's';
  }
  function badge(ok, yes, no) { return el('span', {class: 'badge ' + (ok ? 'ok' : 'bad')}, ok ? yes : no); }
  function redisBadge(v) {
    if (v === 'off') return el('span', {class: 'badge off'}, 'off');
    return badge(v === 'connected', 'connected', v);
  }
  function fill(tbodyOwner, rows, emptyId) {
    const tbody = $(tbodyOwner).tBodies[0];
    tbody.replaceChildren(...rows);
    if (emptyId) $(emptyId).hidden = rows.length > 0;
    $(tbodyOwner).hidden = rows.length === 0 && !!emptyId;
  }

  async function get(path) {
    const r = await fetch(path, {credentials: 'same-origin', cache: 'no-store'});
    if (r.status === 401) { window.location.href = '/'; throw new Error('logged out'); }
    return r.json();
  }

  function renderStatus(s) {
    $('version').textContent = 'turn-control ' + s.version;
    $('realm').textContent = s.realm;
    $('threads').textContent = s.threads;
    $('allocation-count').textContent = s.allocations;
    $('relay').textContent = (s.relay_ips || []).join(', ') + ' ports ' + s.relay_ports;
    const st = s.state_store || {};
    $('state-redis').replaceChildren(redisBadge(s.state_redis));
    if (st.endpoint) {
      // Degraded: calls still connect (kernel path); events wait in a bounded queue.
      $('state-redis').append(el('span', {class: 'muted', id: 'state-store-detail'},
        ' ' + (st.connected ? 'master ' + st.master : 'degraded: calls on the kernel path') +
        ', ' + st.queue_depth + '/' + st.queue_limit + ' queued' +
        (st.master_changes ? ', ' + st.master_changes + ' failover(s)' : '')));
    }
    $('userdb-redis').replaceChildren(redisBadge(s.userdb_redis));
    const dps = s.dataplanes || [];
    $('dataplanes').replaceChildren(dps.length === 0 ? el('span', {class: 'muted'}, 'none (kernel path)')
      : el('span', {}, ...dps.map((d) => el('span', {class: 'dp'}, badge(d.up, d.instance, d.instance + ' stale'),
          ' ' + d.workers + ' worker(s), lag ' + d.sync_lag_ms + ' ms '))));
    fill('listeners', s.listeners.map((l) => el('tr', {'data-transport': l.transport, 'data-port': l.port},
      el('td', {class: 'transport'}, l.transport.toUpperCase()),
      el('td', {class: 'mono'}, l.ip),
      el('td', {class: 'mono'}, l.port),
      el('td', {}, l.up ? badge(true, 'up') : el('span', {}, badge(false, '', 'down'), ' ' + (l.error || ''))))));
  }

  function renderUsers(u) {
    // Every known name (configuration, admin API, Redis user DB); the ones
    // added through the admin API are marked. Names only, never keys.
    const local = new Set((u.users || []).map((x) => x.name));
    const names = [...new Set(u.all_names || [])].sort();
    $('users').replaceChildren(...names.map((n) => el('li', {class: 'chip' + (local.has(n) ? ' local' : ''),
      'data-name': n, title: local.has(n) ? 'added through the admin API' : 'configuration or Redis user DB'}, n)));
    $('users-empty').hidden = names.length > 0;
    $('users-count').textContent = names.length;
  }

  function renderAllocations(a) {
    const list = a.allocations || [];
    $('usage-count').textContent = list.length;
    fill('allocations', list.map((x) => el('tr', {class: 'allocation', 'data-id': x.id, 'data-username': x.username},
      el('td', {class: 'username'}, x.username),
      el('td', {class: 'transport'}, x.transport.toUpperCase()),
      el('td', {class: 'client mono'}, x.client),
      el('td', {class: 'relay mono'}, x.relay_advertised),
      el('td', {class: 'peers mono'}, x.permissions.length === 0 ? '\u2013'
        : x.permissions.map((p) => p.peer).join(', ')),
      el('td', {class: 'channels mono'}, x.channels.length === 0 ? '\u2013'
        : x.channels.map((c) => '0x' + c.channel.toString(16) + ' \u2192 ' + c.peer).join(', ')),
      el('td', {class: 'num to-peer'}, x.to_peer.packets + ' pkt / ' + bytes(x.to_peer.bytes)),
      el('td', {class: 'num to-client'}, x.to_client.packets + ' pkt / ' + bytes(x.to_client.bytes)),
      el('td', {class: 'num lifetime'}, duration(x.lifetime_remaining_s)))), 'allocations-empty');
  }

  let servers = [];
  const probing = new Set();
  function renderServers(t) {
    servers = t.turnServers || [];
    $('servers-count').textContent = servers.length;
    const now = Date.now() / 1000;
    fill('turn-servers', servers.map((s) => {
      const st = s.lastStatus;
      let reach, rtt = '\u2013';
      if (probing.has(s.id) && !st) reach = el('span', {class: 'muted'}, 'checking\u2026');
      else if (!st) reach = el('span', {class: 'muted'}, 'not checked');
      else if (st.reachable) { reach = badge(true, 'reachable'); rtt = st.roundTripTimeMs.toFixed(1) + ' ms'; }
      else reach = el('span', {title: st.error}, badge(false, '', 'unreachable'), ' ', el('span', {class: 'err'}, st.error));
      const when = st ? el('div', {class: 'muted small'}, duration(Math.max(0, Math.round(now - st.checkedAt))) + ' ago') : '';
      const btn = el('button', {class: 'link', type: 'button', title: 'Allocate + Refresh(0) now'}, 'check');
      btn.addEventListener('click', () => probe(s.id));
      return el('tr', {class: 'turn-server', 'data-id': s.id},
        el('td', {class: 'mono'}, s.serverAddress), el('td', {class: 'mono'}, s.clientAddress),
        el('td', {}, s.type.toUpperCase()), el('td', {}, s.username),
        el('td', {class: 'reachable'}, reach, when), el('td', {class: 'num rtt'}, rtt), el('td', {}, btn));
    }), 'servers-empty');
  }

  async function probe(id) {
    if (probing.has(id)) return;
    probing.add(id);
    try { await get('/api/v1/turn-servers/' + encodeURIComponent(id) + '/status'); } catch (e) { /* shown next poll */ }
    probing.delete(id);
  }
  // Each registered server is probed (a real Allocate + Refresh(0)) when it
  // has no status or its last one is older than PROBE_EVERY_S.
  async function probeLoop() {
    const now = Date.now() / 1000;
    for (const s of servers)
      if (!s.lastStatus || now - s.lastStatus.checkedAt >= PROBE_EVERY_S) await probe(s.id);
    setTimeout(probeLoop, 1000);
  }

  let polls = 0;
  async function poll() {
    try {
      const [status, users, allocations, turnServers] = await Promise.all([
        get('/api/v1/status'), get('/api/v1/users'), get('/api/v1/allocations'), get('/api/v1/turn-servers')]);
      renderStatus(status);
      renderUsers(users);
      renderAllocations(allocations);
      renderServers(turnServers);
      polls++;
      document.body.dataset.polls = polls;
      $('conn').dataset.state = 'live';
      $('conn-text').textContent = 'live';
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      $('conn').dataset.state = 'error';
      $('conn-text').textContent = 'admin API unreachable: ' + e.message;
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  poll();
  setTimeout(probeLoop, 1500);
})();
)js";

constexpr std::string_view kCss = R"css(:root {
  --bg: #f4f6f9; --fg: #1c2430; --muted: #6b7685; --card: #fff; --line: #e3e7ee;
  --accent: #2563eb; --ok: #15803d; --ok-bg: #dcfce7; --bad: #b91c1c; --bad-bg: #fee2e2; --off-bg: #eceff3;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; color: var(--fg); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
.mono, td.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.bar { display: flex; align-items: center; gap: 24px; padding: 12px 28px; background: #111827; color: #f9fafb; }
.bar .brand { font-size: 18px; font-weight: 600; flex: 1; }
.bar .brand .muted { color: #9ca3af; font-weight: 400; font-size: 13px; margin-left: 8px; }
.logo { color: #60a5fa; }
.conn { display: flex; align-items: center; gap: 8px; font-size: 13px; }
.conn .dot { width: 10px; height: 10px; border-radius: 50%; background: #9ca3af; }
.conn[data-state="live"] .dot { background: #22c55e; box-shadow: 0 0 6px #22c55e; }
.conn[data-state="error"] .dot { background: #ef4444; }
button.link { background: none; border: none; color: inherit; text-decoration: underline; cursor: pointer; font: inherit; padding: 0; }
.bar button.link { color: #d1d5db; }
main { padding: 20px 28px; max-width: 1500px; margin: 0 auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 8px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; margin-top: 4px; overflow-wrap: anywhere; }
.card .value.small { font-size: 14px; font-weight: 500; }
.dp { display: inline-block; margin-right: 8px; }
h2 { font-size: 15px; margin: 22px 0 8px; }
h2 .count { background: var(--off-bg); color: var(--muted); border-radius: 10px; padding: 1px 8px; font-size: 12px; font-weight: 500; margin-left: 6px; }
h2 .count:empty { display: none; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th { text-align: left; font-weight: 600; font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; background: #f9fafb; }
th, td { padding: 8px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
tbody tr:last-child td { border-bottom: none; }
tbody tr:hover { background: #f8fafc; }
.num { text-align: right; white-space: nowrap; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 9px; font-size: 12px; font-weight: 600; }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.bad { color: var(--bad); background: var(--bad-bg); }
.badge.off { color: var(--muted); background: var(--off-bg); }
.badge:empty { display: none; }
.err { color: var(--bad); font-size: 12px; }
.empty { color: var(--muted); background: var(--card); border: 1px dashed var(--line); border-radius: 8px; padding: 14px; margin: 0; }
.chips { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px; }
.chip { background: var(--card); border: 1px solid var(--line); border-radius: 14px; padding: 3px 12px; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.chip.local { border-color: #93c5fd; background: #eff6ff; }
.chip.legend { padding: 0 8px; font-size: 12px; }
.two { display: grid; grid-template-columns: minmax(220px, 1fr) 3fr; gap: 24px; }
@media (max-width: 900px) { .chip.local { border-color: #93c5fd; background: #eff6ff; }
.chip.legend { padding: 0 8px; font-size: 12px; }
.two { grid-template-columns: 1fr; } }
footer { color: var(--muted); font-size: 12px; padding: 10px 28px 24px; max-width: 1500px; margin: 0 auto; }
body.login { display: flex; align-items: center; justify-content: center; min-height: 100vh; }
.login-box { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 28px 32px; width: 340px; display: flex; flex-direction: column; gap: 8px; }
.login-box h1 { margin: 0; font-size: 22px; }
.login-box input { padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
.login-box button { margin-top: 8px; padding: 8px; border: none; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
.login-box .message { color: var(--bad); background: var(--bad-bg); border-radius: 6px; padding: 6px 10px; margin: 0; }
)css";

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string_view page_html() { return kPage; }
std::string_view app_js() { return kJs; }
std::string_view app_css() { return kCss; }

std::string login_html(std::string_view message) {
  std::string out(kLoginHead);
  if (!message.empty()) out += "  <p class=\"message\">" + html_escape(message) + "</p>\n";
  out += kLoginTail;
  return out;
}

}  // namespace turn::cp::status_page
