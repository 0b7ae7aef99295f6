/* Referrer portal: the copy button (Clipboard API, with a select-and-copy fallback) and its share counter. */
(function () {
  "use strict";
  function copy(input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(input.value);
    }
    input.select();
    input.setSelectionRange(0, input.value.length);
    try { document.execCommand("copy"); } catch (e) { /* the text stays selected for a manual copy */ }
    return Promise.resolve();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) { return; }
    var label = button.textContent;
    copy(input).then(function () {
      button.textContent = button.getAttribute("data-copied") || label;
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.textContent = label; }, 2000);
      var counter = button.getAttribute("data-share-url");
      if (counter && window.fetch) { fetch(counter, {credentials: "same-origin", redirect: "manual"}); }
    });
  });
})();
