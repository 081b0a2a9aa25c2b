// Alert queue and alert detail: live updates over Server-Sent Events and
// keyboard triage. Alert data is attacker-controlled (rule titles, host
// names): it only ever reaches the page through textContent (Vigil.el).
"use strict";
(function () {
  const V = window.Vigil;
  const queue = document.getElementById("queue-body");
  const detail = document.getElementById("alert-detail");
  const bulk = document.getElementById("bulk");
  if (!queue && !detail) return;
  const canTriage = bulk && bulk.dataset.triage === "true";
  const canSuppress = bulk && bulk.dataset.suppress === "true";
  let current = 0;

  function rows() { return queue ? Array.from(queue.querySelectorAll("tr[data-id]")) : []; }

  function when(iso) {
    if (!iso) return "—";
    return iso.replace("T", " ").replace(/\.\d+/, "").replace(/Z$/, "Z");
  }

  // buildRow mirrors the "alertrow" template of alerts.html.
  function buildRow(a) {
    const tr = V.el("tr", { "data-id": String(a.id), "data-rule": a.rule_id, "data-host": a.host, "data-state": a.state },
      V.el("td", null, V.el("input", { type: "checkbox", class: "sel", "aria-label": "select", tabindex: "-1" })),
      V.el("td", null, V.el("span", { class: "level level-" + a.level, text: a.level })),
      V.el("td", null, V.el("a", { class: "title", href: "/alerts/" + encodeURIComponent(String(a.id)), text: a.rule_title })),
      V.el("td", { class: "host", text: a.host }),
      V.el("td", { class: "state state-" + a.state, text: a.state }),
      V.el("td", { class: "assignee", text: a.assignee || "" }),
      V.el("td", { class: "num count", text: String(a.count) }),
      V.el("td", { class: "seen", text: when(a.last_seen) }));
    return tr;
  }

  function rowFor(id) {
    return queue ? queue.querySelector('tr[data-id="' + String(Number(id)) + '"]') : null;
  }

  function refreshEmpty() {
    const e = document.getElementById("empty");
    if (e) e.hidden = rows().length > 0;
  }

  function select(i) {
    const rs = rows();
    if (rs.length === 0) return;
    current = Math.max(0, Math.min(i, rs.length - 1));
    rs.forEach(function (r, j) { r.classList.toggle("current", j === current); });
    rs[current].scrollIntoView({ block: "nearest" });
  }

  function currentRow() { return rows()[current] || null; }

  // upsert puts a streamed or changed alert into the queue.
  function upsert(a, isNew) {
    const old = rowFor(a.id);
    const tr = buildRow(a);
    if (old) {
      const wasCurrent = old.classList.contains("current");
      tr.querySelector(".sel").checked = old.querySelector(".sel").checked;
      old.replaceWith(tr);
      if (wasCurrent) tr.classList.add("current");
    } else if (isNew) {
      tr.classList.add("fresh");
      queue.insertBefore(tr, queue.firstChild);
      if (rows().length > 1 && current >= 0) current++; // keep the same row selected
      if (rows().length === 1) select(0);
      else select(current);
    }
    refreshEmpty();
    updateSelCount();
  }

  function remove(id) {
    const r = rowFor(id);
    if (!r) return;
    const idx = rows().indexOf(r);
    r.remove();
    if (idx < current) current--;
    select(current);
    refreshEmpty();
    updateSelCount();
  }

  // ---- live updates ----
  function connect() {
    const table = document.getElementById("queue");
    if (!table || !window.EventSource) return;
    const live = document.getElementById("live");
    const text = document.getElementById("live-text");
    const es = new EventSource(table.dataset.stream);
    es.onopen = function () { live.classList.add("on"); text.textContent = "live"; };
    es.onerror = function () { live.classList.remove("on"); text.textContent = "reconnecting…"; };
    es.addEventListener("alert", function (ev) { upsert(JSON.parse(ev.data), true); });
    es.addEventListener("update", function (ev) { upsert(JSON.parse(ev.data), false); });
    es.addEventListener("gone", function (ev) { remove(JSON.parse(ev.data).id); });
  }

  // ---- triage ----
  function targets() {
    if (detail) return [{ id: detail.dataset.id, rule: detail.dataset.rule, host: detail.dataset.host }];
    const sel = rows().filter(function (r) { return r.querySelector(".sel").checked; });
    const use = sel.length ? sel : (currentRow() ? [currentRow()] : []);
    return use.map(function (r) { return { id: r.dataset.id, rule: r.dataset.rule, host: r.dataset.host }; });
  }

  function updateSelCount() {
    const c = document.getElementById("selcount");
    if (c) c.textContent = rows().filter(function (r) { return r.querySelector(".sel").checked; }).length + " selected";
  }

  function applied(a) {
    if (detail) {
      detail.dataset.state = a.state;
      document.getElementById("alert-state").textContent = a.state + (a.state_by ? " by " + a.state_by : "") + (a.reason ? " — " + a.reason : "");
      document.getElementById("alert-assignee").textContent = a.assignee || "";
    } else {
      upsert(a, false);
    }
  }

  async function each(list, what, fn) {
    let ok = 0, failed = "";
    for (const t of list) {
      try { applied(await fn(t)); ok++; } catch (e) { failed = e.message; }
    }
    if (failed) V.toast(what + ": " + ok + " done; failed: " + failed, true);
    else if (ok) V.toast(what + ": " + ok + " alert" + (ok === 1 ? "" : "s"));
  }

  function state(to, reason) {
    return function (t) {
      const body = { state: to };
      if (reason) body.reason = reason;
      return V.api("POST", "/api/v1/alerts/" + encodeURIComponent(t.id) + "/state", body);
    };
  }

  function acknowledge() { if (canTriage) each(targets(), "Acknowledged", state("acknowledged")); }

  function assignMe() {
    if (!canTriage || !V.user) return;
    each(targets(), "Assigned to " + V.user, function (t) {
      return V.api("POST", "/api/v1/alerts/" + encodeURIComponent(t.id) + "/assign", { assignee: V.user });
    });
  }

  // askReason opens the reason dialog; done(reason, ttlHours) on OK.
  function askReason(title, what, withTTL, done) {
    const d = document.getElementById("reason-dialog");
    const reason = document.getElementById("reason");
    document.getElementById("reason-title").textContent = title;
    document.getElementById("reason-what").textContent = what;
    document.getElementById("ttl-label").hidden = !withTTL;
    reason.value = "";
    d.returnValue = "";
    d.onclose = function () {
      d.onclose = null;
      if (d.returnValue === "ok" && reason.value.trim() !== "") done(reason.value.trim(), Number(document.getElementById("ttl").value));
    };
    d.showModal();
    reason.focus();
  }

  function falsePositive() {
    if (!canTriage) return;
    const list = targets();
    if (!list.length) return;
    askReason("Close as false positive", list.length + " alert" + (list.length === 1 ? "" : "s"), false, function (reason) {
      each(list, "Closed as false positive", state("false_positive", reason));
    });
  }

  function suppress() {
    if (!canSuppress) return;
    const seen = {};
    const list = targets().filter(function (t) {
      const k = t.rule + "\u0000" + t.host;
      if (seen[k]) return false;
      seen[k] = true;
      return true;
    });
    if (!list.length) return;
    const what = list.map(function (t) { return t.host; }).join(", ");
    askReason("Suppress rule for host", "on " + what, true, async function (reason, hours) {
      const until = new Date(Date.now() + hours * 3600 * 1000).toISOString();
      let ok = 0, failed = "";
      for (const t of list) {
        try {
          await V.api("POST", "/api/v1/suppressions", { rule_id: t.rule, host: t.host, reason: reason, expires_at: until });
          ok++;
        } catch (e) { failed = e.message; }
      }
      V.toast(failed ? "Suppression failed: " + failed : "Suppressed on " + ok + " host" + (ok === 1 ? "" : "s"), !!failed);
    });
  }

  function toggleSelect() {
    const r = currentRow();
    if (!r) return;
    const cb = r.querySelector(".sel");
    cb.checked = !cb.checked;
    updateSelCount();
  }

  function open() {
    const r = currentRow();
    if (r) window.location.assign("/alerts/" + encodeURIComponent(r.dataset.id));
  }

  const keys = {
    j: function () { select(current + 1); },
    k: function () { select(current - 1); },
    x: toggleSelect,
    o: open,
    Enter: open,
    a: acknowledge,
    s: assignMe,
    f: falsePositive,
    u: suppress,
  };

  // A shortcut that opens the reason dialog must not also type its letter
  // into the dialog's field: its keypress is swallowed until the key is up.
  let swallow = null;
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || V.typing(ev)) return;
    if (document.querySelector("dialog[open]")) return;
    const fn = keys[ev.key];
    if (!fn || (detail && /^[jkxo]$|^Enter$/.test(ev.key))) return;
    ev.preventDefault();
    swallow = ev.key;
    fn();
  });
  document.addEventListener("keypress", function (ev) {
    if (swallow !== null && ev.key === swallow) ev.preventDefault();
  }, true);
  document.addEventListener("keyup", function (ev) {
    if (ev.key === swallow) swallow = null;
  }, true);

  if (bulk) {
    bulk.addEventListener("click", function (ev) {
      const b = ev.target.closest("button[data-act]");
      if (!b) return;
      ({ ack: acknowledge, assign: assignMe, fp: falsePositive, suppress: suppress })[b.dataset.act]();
    });
  }
  if (queue) {
    queue.addEventListener("change", function (ev) { if (ev.target.classList.contains("sel")) updateSelCount(); });
    queue.addEventListener("click", function (ev) {
      const tr = ev.target.closest("tr[data-id]");
      if (tr && !ev.target.closest("a")) select(rows().indexOf(tr));
    });
    select(0);
    connect();
  }
})();
