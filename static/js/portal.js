/* Referrer portal: the copy buttons (Clipboard API, with a select-and-copy fallback) and the share counter (a POST);
   forms marked data-once (redeeming points) send once however often they are clicked (the server checks too). */
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
  // A share counts on a POST only (a GET never does), with the page's CSRF token; a beacon outlives the page.
  function countShare(url) {
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    var body = new FormData();
    if (token) { body.append("csrfmiddlewaretoken", token.value); }
    if (navigator.sendBeacon && navigator.sendBeacon(url, body)) { return; }
    if (window.fetch) { fetch(url, {method: "POST", body: body, credentials: "same-origin", redirect: "manual"}); }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) { return; }
    // The label's markup is kept (a visually hidden part names what is copied), and put back as it was.
    var label = button.innerHTML;
    copy(input).then(function () {
      button.textContent = button.getAttribute("data-copied") || button.textContent;
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.innerHTML = label; }, 2000);
      var counter = button.getAttribute("data-share-url");
      if (counter) { countShare(counter); }
    });
  });
  // The phone's share sheet (Web Share API), where the browser has one; counted once it was shared, not cancelled.
  var nativeShare = document.querySelector("[data-native-share]");
  if (nativeShare && navigator.share) {
    nativeShare.parentNode.hidden = false;
    nativeShare.addEventListener("click", function () {
      navigator.share({
        title: nativeShare.getAttribute("data-title"),
        text: nativeShare.getAttribute("data-text"),
        url: nativeShare.getAttribute("data-url")
      }).then(function () { countShare(nativeShare.getAttribute("data-share-url")); })
        .catch(function () { /* cancelled: nothing shared, nothing counted */ });
    });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-once")) { return; }
    if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-disabled", "true"); button.classList.add("is-busy"); }
  });
  // The friend's welcome page: while a worker prepares the gift, ask every 2 s (for up to 2 minutes); when it is
  // decided, show the page again as the server renders it (in the friend's language).
  var gift = document.querySelector("[data-gift-url] .gift-state[data-state=waiting]");
  if (gift && window.fetch) {
    var url = gift.parentNode.getAttribute("data-gift-url");
    var tries = 0;
    var timer = setInterval(function () {
      tries += 1;
      if (tries > 60) { clearInterval(timer); return; }
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (answer && answer.state !== "waiting") { clearInterval(timer); window.location.reload(); }
        })
        .catch(function () { /* a network hiccup: the next tick asks again */ });
    }, 2000);
  }
})();
