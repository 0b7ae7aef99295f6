// The install page's test order: refresh its stages from the JSON endpoint until nothing is left for the worker.
// Without JavaScript the page's "Refresh" link does the same.
(function () {
  "use strict";
  var run = document.getElementById("test-run");
  if (!run || !window.fetch) return;
  var url = run.getAttribute("data-status-url");
  var symbols = {done: "✓", waiting: "…", held: "◷", review: "!", stopped: "✗", skipped: "–"};
  var tries = 0;

  function render(data) {
    var list = run.querySelector("ol");
    data.stages.forEach(function (stage) {
      var item = list.querySelector('[data-stage="' + stage.key + '"]');
      if (!item) {
        item = document.createElement("li");
        item.setAttribute("data-stage", stage.key);
        item.innerHTML = '<span class="tick" aria-hidden="true"></span><strong class="label"></strong>: ' +
          '<span class="state"></span><span class="detail"></span>';
        list.appendChild(item);
      }
      if (item.getAttribute("data-state") === stage.state &&
          item.querySelector(".detail").textContent === (stage.detail ? " — " + stage.detail : "")) return;
      item.className = "stage " + stage.state;
      item.setAttribute("data-state", stage.state);
      item.querySelector(".tick").textContent = symbols[stage.state] || "";
      item.querySelector(".label").textContent = stage.label;
      item.querySelector(".state").textContent = stage.state_label;
      item.querySelector(".detail").textContent = stage.detail ? " — " + stage.detail : "";
    });
    run.setAttribute("data-finished", data.finished ? "true" : "false");
  }

  function poll() {
    if (run.getAttribute("data-finished") === "true" || tries >= 200) return;
    tries += 1;
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, 1500); });
  }
  window.setTimeout(poll, 1000);
})();
