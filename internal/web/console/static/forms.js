// Vigil console: forms that call the REST API. A <form data-api="/api/v1/…">
// is sent with Vigil.api (session cookie + CSRF header) instead of being
// submitted; the API checks the permission, the CSRF token and the origin,
// and audits the change. Attributes:
//   data-method   HTTP method (default POST)
//   data-confirm  ask first
//   data-then     "reload" (default), a path with {id} replaced by the
//                 response's id, or "secret:ELEMENT_ID" to show the
//                 response's secret (or a user's name and one-time
//                 password) in that element as text, or "result" to
//                 report a send test's {sent, error}
//   data-upload   send the file input named "file" as the raw body, with
//                 the other fields as query parameters
// Fields: name="a.b" nests; data-type="bool" (checkbox → true/false),
// "true" or "false" (a constant),
// "int", "ints" (comma or space separated), "time" (datetime-local, read as
// UTC); empty fields are left out unless data-keep is set.
"use strict";
(function () {
  function value(el) {
    const t = el.dataset.type || "";
    if (t === "bool") return el.checked;
    if (t === "true") return true;
    if (t === "false") return false;
    if (el.type === "checkbox") return el.checked ? el.value : undefined;
    const v = el.value;
    if (v === "" && !("keep" in el.dataset)) return undefined;
    if (t === "int") return Number(v);
    if (t === "ints") return v.split(/[\s,]+/).filter(Boolean).map(Number);
    if (t === "time") return v === "" ? null : new Date(v + (v.length === 16 ? ":00Z" : "Z")).toISOString();
    return v;
  }

  function body(form) {
    const out = {};
    let any = false;
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "file") continue;
      if (el.type === "radio" && !el.checked) continue;
      const v = value(el);
      if (v === undefined) continue;
      const parts = el.name.split(".");
      // "to.0": a one-element list.
      if (parts.length === 2 && /^[0-9]+$/.test(parts[1])) { (out[parts[0]] = out[parts[0]] || []).push(v); any = true; continue; }
      let o = out;
      for (let i = 0; i < parts.length - 1; i++) o = o[parts[i]] = o[parts[i]] || {};
      o[parts[parts.length - 1]] = v;
      any = true;
    }
    return any ? out : undefined;
  }

  async function upload(form, path) {
    const file = form.elements.namedItem("file");
    if (!file || !file.files.length) throw new Error("choose a file");
    const params = new URLSearchParams();
    params.set("name", file.files[0].name);
    for (const el of form.elements) {
      if (el.name && el.name !== "file" && el.value) params.set(el.name, el.value);
    }
    const resp = await fetch(path + "?" + params.toString(), {
      method: "POST", credentials: "same-origin", body: file.files[0],
      headers: { "Content-Type": "application/octet-stream", "X-CSRF-Token": Vigil.csrf },
    });
    const data = await resp.json().catch(function () { return null; });
    if (!resp.ok) throw new Error((data && data.message) || ("HTTP " + resp.status));
    return data;
  }

  document.addEventListener("submit", async function (ev) {
    const form = ev.target.closest("form[data-api]");
    if (!form) return;
    ev.preventDefault();
    const path = form.dataset.api;
    if (!path.startsWith("/api/v1/")) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      const res = "upload" in form.dataset ? await upload(form, path)
        : await Vigil.api(form.dataset.method || "POST", path, body(form));
      const then = form.dataset.then || "reload";
      if (then.startsWith("secret:")) {
        const out = document.getElementById(then.slice(7));
        // A token's secret, or a user's one-time password (with the name).
        const text = res && (res.secret !== undefined ? res.secret : res.user.name + ": " + res.password);
        if (out && res) { out.textContent = text; out.closest("[hidden]") && (out.closest("[hidden]").hidden = false); }
        Vigil.toast("Created. Copy the secret now: it is not shown again.");
      } else if (then === "result") {
        Vigil.toast(res && res.sent ? "Sent." : "Not sent: " + ((res && res.error) || "unknown error"), !(res && res.sent));
      } else if (then.startsWith("/")) {
        location.assign(then.replace("{id}", res && res.id !== undefined ? encodeURIComponent(res.id) : ""));
      } else {
        location.reload();
      }
    } catch (e) {
      Vigil.toast(e.message, true);
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  });
})();
