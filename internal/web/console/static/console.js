// Vigil console: shared helpers for every page. No framework, no inline code
// (CSP script-src 'self'). Untrusted text is only ever set with textContent.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  // api calls the REST API with the session cookie and the CSRF token.
  // It resolves to the decoded JSON body (or null) and rejects with an Error
  // carrying the server's message and status.
  async function api(method, path, body) {
    const opts = { method: method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    const text = await resp.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
    if (!resp.ok) {
      const err = new Error((data && data.message) || ("HTTP " + resp.status));
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  // el builds an element: el("td", {class: "num"}, "text", child, ...).
  // Strings become text nodes, never markup.
  function el(tag, attrs) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        if (k === "class") e.className = attrs[k];
        else if (k === "text") e.textContent = attrs[k];
        else if (k === "href") e.setAttribute("href", safeHref(attrs[k]));
        else if (k.startsWith("on")) throw new Error("no handler attributes");
        else e.setAttribute(k, attrs[k]);
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  // safeHref keeps links on this server.
  function safeHref(h) {
    h = String(h);
    return h.startsWith("/") && !h.startsWith("//") && !h.startsWith("/\\") ? h : "#";
  }

  let toastTimer = null;
  // toast shows a short message at the bottom right.
  function toast(msg, bad) {
    let t = document.getElementById("toast");
    if (!t) {
      t = el("div", { id: "toast", class: "toast", role: "status" });
      document.body.appendChild(t);
    }
    t.textContent = msg;
    t.className = bad ? "toast bad" : "toast";
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 4000);
  }

  // typing reports whether a key event belongs to a text field (keyboard
  // shortcuts stay out of the way there).
  function typing(ev) {
    const t = ev.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  window.Vigil = { api: api, el: el, toast: toast, csrf: csrf, typing: typing,
    user: document.body ? document.body.dataset.user || "" : "" };
})();
