// provkit line view: fetch the overview's live part again every few seconds and swap it
// in, so counters, chart and tables follow the line without reloading the page.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var status = document.getElementById("live-status");
  var source = live.getAttribute("data-src");
  var every = Math.max(1, parseFloat(live.getAttribute("data-refresh")) || 3) * 1000;
  var busy = false;

  function say(text, stale) {
    if (!status) { return; }
    status.textContent = text;
    status.className = stale ? "status stale" : "status";
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(source, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) { live.innerHTML = html; say("", false); })
      .catch(function (error) { say("Not updated: " + error.message + " (retrying)", true); })
      .then(function () { busy = false; });
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
}());
