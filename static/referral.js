/* ReferralSaaS snippet v1: remembers ?ref= / ?rs_click= until checkout.
   ES5, no dependencies, never throws. Docs: docs/js-snippet.md */
(function (win, doc) {
  var KEY = "rs_ref";
  var CODE_RE = /^[A-Za-z0-9-]{3,32}$/;
  var CLICK_RE = /^[0-9a-f]{32}$/;

  // RegExp.test(null) would test the string "null", so check the type first.
  function ok(re, v) { return typeof v == "string" && re.test(v) ? v : null; }
  function now() { return Math.floor(new Date() / 1000); }
  function empty() { return { code: null, click_id: null, ts: null }; }

  // localStorage may be missing or throw (Safari private mode, sandboxed iframes).
  function storage(method, value) {
    try { return win.localStorage[method](KEY, value); } catch (e) { return null; }
  }

  // Configuration from the <script> tag's data-* attributes.
  var script = null;
  function attr(name) {
    try { return script.getAttribute("data-" + name); } catch (e) { return null; }
  }
  try {
    script = doc.currentScript;
    if (!script) {
      var all = doc.getElementsByTagName("script");
      for (var i = all.length - 1; i >= 0 && !script; i--) {
        if ((all[i].src || "").indexOf("referral.js") >= 0) script = all[i];
      }
    }
  } catch (e) {}

  var days = parseFloat(attr("window-days"));
  var maxAge = Math.round((days > 0 ? days : 30) * 86400); // seconds
  var domain = attr("cookie-domain");
  var paramRef = attr("param-ref") || "ref";
  var paramClick = attr("param-click") || "rs_click";
  var lastTouch = attr("model") == "last_touch";

  // JSON string -> clean {code, click_id, ts}, or null if invalid or expired.
  function parse(json) {
    try {
      var o = JSON.parse(json);
      var code = ok(CODE_RE, o.code), click = ok(CLICK_RE, o.click_id);
      if ((code || click) && typeof o.ts == "number" && now() - o.ts <= maxAge) {
        return { code: code, click_id: click, ts: o.ts };
      }
    } catch (e) {}
    return null;
  }

  function writeCookie(value, age, withDomain) {
    try {
      doc.cookie = KEY + "=" + value + "; path=/; max-age=" + age + "; SameSite=Lax" +
        (withDomain && domain ? "; domain=" + domain : "") +
        (win.location.protocol == "https:" ? "; Secure" : "");
    } catch (e) {}
  }

  function decode(s) {
    try { return decodeURIComponent(s.replace(/\+/g, " ")); } catch (e) { return null; }
  }

  // First value of a query parameter; a malformed pair never hides the others.
  function param(name) {
    try {
      var q = win.location.search.replace(/^\?/, "").split("&");
      for (var i = 0; i < q.length; i++) {
        var kv = q[i].split("=");
        if (decode(kv[0]) == name) return decode(kv[1] || "");
      }
    } catch (e) {}
    return null;
  }

  // Cookie first, localStorage as the fallback when cookies are blocked.
  function attribution() {
    var m = null;
    try { m = /(?:^|;\s*)rs_ref=([^;]*)/.exec(doc.cookie); } catch (e) {}
    return (m && parse(decode(m[1]))) || parse(storage("getItem")) || empty();
  }

  function clear() {
    writeCookie("", 0, true);
    if (domain) writeCookie("", 0, false);
    storage("removeItem");
  }

  function setHidden(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = doc.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value || "";
  }

  // Put the attribution into hidden inputs of a checkout <form>.
  function fillForm(form) {
    var a = attribution();
    try {
      setHidden(form, "referral_code", a.code);
      setHidden(form, "referral_click_id", a.click_id);
    } catch (e) {}
    return a;
  }

  // Capture ?ref= / ?rs_click= on page load.
  // first_touch: keep an existing unexpired attribution; last_touch: overwrite.
  try {
    var code = ok(CODE_RE, param(paramRef)), click = ok(CLICK_RE, param(paramClick));
    if ((code || click) && (lastTouch || !attribution().ts)) {
      var json = JSON.stringify({ code: code, click_id: click, ts: now() });
      writeCookie(encodeURIComponent(json), maxAge, true);
      storage("setItem", json);
    }
  } catch (e) {}

  win.ReferralSaaS = {
    version: "1",
    attribution: attribution,
    clear: clear,
    fillForm: fillForm
  };
})(window, document);
