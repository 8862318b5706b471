// Live updates for the dashboard and the sample page (no framework, no inline script).
// One websocket to /live?since=<last event id>. Each message carries event ids and
// what this person may see of the changed thing; the page then re-reads itself (as
// this person) and swaps the regions marked data-live whose content changed, with a
// brief highlight. Reconnects with backoff from the last id seen, so nothing is missed.
(function () {
  "use strict";
  var el = document.getElementById("live");
  if (!el || !window.WebSocket) { return; }
  var text = el.querySelector(".live-text");
  var scope = el.dataset.scope;
  var sampleId = el.dataset.sample ? parseInt(el.dataset.sample, 10) : null;
  var cursor = parseInt(el.dataset.since || "0", 10);
  var backoff = 500, socket = null, stopped = false, lastHeard = 0, refreshTimer = null;
  var changedIds = new Set();
  // what this person watches (ids only, read through their own policies): a change to one
  // of them counts on the "Watching" link, and the Watching page re-reads itself
  var ids = function (v) { return new Set((v || "").split(",").filter(Boolean).map(Number)); };
  var watchSamples = ids(el.dataset.watchSamples), watchSuppliers = ids(el.dataset.watchSuppliers);
  var watchedChanged = new Set();
  // what arrived (id, kind, sample), newest last: for people debugging and for the browser tests
  var seen = window.trackerLive = { events: [], refreshes: 0, watched: [] };

  function status(state, words) {
    el.dataset.state = state;
    text.textContent = words;
  }

  function connect() {
    if (stopped) { return; }
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    // the page's own host and scheme (url_for builds ws:// URLs for websocket routes)
    var path = new URL(el.dataset.url, location.href).pathname;
    socket = new WebSocket(proto + location.host + path + "?since=" + cursor);
    status("connecting", "connecting…");
    socket.onopen = function () { lastHeard = Date.now(); };
    socket.onmessage = function (e) {
      lastHeard = Date.now();
      var msg = JSON.parse(e.data);
      if (msg.type === "hello") { backoff = 500; status("live", "live"); }
      if (msg.type === "events") { handle(msg.events); }
      if (msg.type === "reload") { stopped = true; status("offline", "reloading…"); location.reload(); return; }
      if (msg.type === "revoked") { stopped = true; status("offline", "signed out"); return; }
      if (typeof msg.cursor === "number" && msg.cursor > cursor) { cursor = msg.cursor; }
    };
    socket.onclose = function () {
      socket = null;
      if (stopped) { return; }
      status("offline", "offline, reconnecting…");
      var wait = backoff + Math.random() * backoff / 2;
      backoff = Math.min(backoff * 2, 15000);
      setTimeout(connect, wait);
    };
  }

  function handle(events) {
    var relevant = false;
    events.forEach(function (ev) {
      seen.events.push({ id: ev.id, kind: ev.kind, sample: ev.sample });
      if (seen.events.length > 500) { seen.events.shift(); }
      if (ev.id > cursor) { cursor = ev.id; }
      if (scope === "dashboard" && ev.kind === "sample") { relevant = true; changedIds.add(ev.sample); }
      if (scope === "sample" && ev.sample === sampleId) { relevant = true; }
      var key = scope === "sample" && ev.sample === sampleId ? null : watched(ev);  // on screen already
      if (key) {
        if (scope === "watching") { relevant = true; if (ev.sample) { changedIds.add(ev.sample); } }
        else { watchedChanged.add(key); }
      }
    });
    if (watchedChanged.size) { badge(); }
    el.dataset.cursor = String(cursor);
    if (relevant) {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refresh, 80);
    }
  }

  // re-read this page as this person and swap what changed
  function refresh() {
    fetch(location.href, { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (outer) {
          var freshOuter = doc.querySelector('[data-live="' + outer.dataset.live + '"]');
          if (!freshOuter) { return; }
          // a list's rows only: its header keeps its sort links and "select all" box
          var region = outer.tagName === "TABLE" ? outer.tBodies[0] : outer;
          var fresh = freshOuter.tagName === "TABLE" ? freshOuter.tBodies[0] : freshOuter;
          if (!region || !fresh || fresh.innerHTML === region.innerHTML) { return; }
          // never throw away what someone is typing, has opened or has ticked
          if (region.contains(document.activeElement) && document.activeElement !== document.body) { return; }
          if (region.querySelector("details[open], input[type=checkbox]:checked")) { return; }
          var items = function (r) { return r.querySelectorAll(":scope > li, tr[data-id]"); };
          var before = new Set(Array.prototype.map.call(items(region), function (c) { return c.outerHTML; }));
          region.innerHTML = fresh.innerHTML;
          var list = items(region);
          Array.prototype.forEach.call(list, function (c) {
            var id = c.dataset && c.dataset.id ? parseInt(c.dataset.id, 10) : null;
            if (!before.has(c.outerHTML) || (id !== null && changedIds.has(id))) { flash(c); }
          });
          if (!list.length) { flash(region); }
        });
        changedIds.clear();
        seen.refreshes += 1;
        document.dispatchEvent(new CustomEvent("live:updated"));
      })
      .catch(function () { /* the next event or reconnect tries again */ });
  }

  // "s:<sample>" or "u:<supplier>" when the event is about something this person watches:
  // the sample itself, or the supplier (its own signal, or one of its samples)
  function watched(ev) {
    if (ev.sample && watchSamples.has(ev.sample)) { return "s:" + ev.sample; }
    var data = ev.data || {};
    if (ev.kind === "supplier" && watchSuppliers.has(data.id)) { return "u:" + data.id; }
    if (data.supplier_id && watchSuppliers.has(data.supplier_id)) { return "u:" + data.supplier_id; }
    return null;
  }

  function badge() {
    var link = document.querySelector("a[data-watching-link]");
    if (!link) { return; }
    var b = link.querySelector(".watch-badge");
    if (!b) {
      b = document.createElement("span");
      b.className = "watch-badge";
      link.appendChild(b);
    }
    var n = watchedChanged.size;
    b.textContent = String(n);
    b.setAttribute("aria-label", n + (n === 1 ? " thing you watch has" : " things you watch have") + " changed");
    link.title = b.getAttribute("aria-label");
    seen.watched = Array.from(watchedChanged);
    b.style.animation = "none";
    void b.offsetWidth;  // restart its pop-in
    b.style.animation = "";
  }

  function flash(node) {
    node.classList.remove("live-changed");
    void node.offsetWidth;  // restart the animation
    node.classList.add("live-changed");
  }

  // a socket that has heard nothing (not even a ping) for 40 s is dead: start again
  setInterval(function () {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastHeard > 40000) { socket.close(); }
  }, 5000);
  window.addEventListener("online", function () { if (!socket) { backoff = 500; connect(); } });
  connect();
})();
