// The leadrouter console's script: optional. Without it the page is complete (a confirmation
// page replaces confirm(), and a reload refreshes). With it:
// * a replay or drop asks first (confirm()), then posts with confirmed=yes;
// * every data-refresh seconds the page fetches itself and swaps each panel in place, unless
//   a form has the focus or the tab is hidden. The HTML comes from our server, escaped there.
"use strict";

(function () {
  var PANELS = ["rotation", "decisions", "stuck", "followups", "health", "sla", "intake"];

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset || !form.dataset.confirm) return;
    event.preventDefault();
    if (!window.confirm(form.dataset.confirm)) return;
    var yes = document.createElement("input");
    yes.type = "hidden";
    yes.name = "confirmed";
    yes.value = "yes";
    form.appendChild(yes);
    form.submit();
  });

  function busy() {
    var active = document.activeElement;
    return document.hidden || (active && active.closest && active.closest("form"));
  }

  function swap(fresh) {
    PANELS.concat(["rendered"]).forEach(function (id) {
      var now = document.getElementById(id);
      var next = fresh.getElementById(id);
      if (now && next) now.replaceWith(document.importNode(next, true));
    });
  }

  function refresh() {
    if (busy()) return;
    fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin",
      headers: { accept: "text/html" },
    })
      .then(function (answer) {
        if (!answer.ok || answer.redirected) throw new Error("signed out or unavailable");
        return answer.text();
      })
      .then(function (text) {
        swap(new DOMParser().parseFromString(text, "text/html"));
      })
      .catch(function () {
        var stamp = document.getElementById("rendered");
        if (stamp) stamp.textContent = "Not refreshed: reload the page.";
      });
  }

  var seconds = parseInt(document.body.dataset.refresh || "0", 10);
  if (seconds > 0) window.setInterval(refresh, seconds * 1000);
})();
