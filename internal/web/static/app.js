// envplane web UI: live updates. Pages that show environments name them in
// <body data-live="…">; when one of them changes (release, definition,
// secrets, promotion), the page's <main> is fetched again and swapped in.
(function () {
  "use strict";
  var live = (document.body.getAttribute("data-live") || "").trim();
  if (!live || !window.EventSource || !window.fetch) { return; }
  var status = document.getElementById("live-status");
  var say = function (text) { if (status) { status.textContent = text; } };
  var qs = live.split(/\s+/).map(function (e) { return "env=" + encodeURIComponent(e); }).join("&");
  var timer = null;
  // editing is true while the user types in a field of the page: a swap
  // would throw the typing away, so the page says there is news instead.
  var editing = function () {
    var el = document.activeElement;
    return el && el.closest && el.closest("main") && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  };
  var refresh = function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (editing()) { say("Changed elsewhere: reload to see it"); return; }
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok || r.redirected) { throw new Error(String(r.status)); } return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var next = doc.querySelector("main"), cur = document.querySelector("main");
          if (next && cur) { cur.replaceWith(next); }
          say("Updated " + new Date().toLocaleTimeString());
        })
        .catch(function () { say("Live updates paused: reload the page"); });
    }, 250);
  };
  var es = new EventSource("/events?" + qs);
  ["release", "environment", "secrets", "promotion", "flags", "flag-change"].forEach(function (kind) {
    es.addEventListener(kind, refresh);
  });
  es.addEventListener("revoked", function () { es.close(); say("Signed out: your token was revoked"); });
  es.onopen = function () { say("Live"); };
  es.onerror = function () { say("Reconnecting…"); };
})();
