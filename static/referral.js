/* ReferralSaaS snippet v1: remembers ?ref= / ?rs_click= until checkout, and keeps a random device id.
   ES5, no dependencies, never throws. Docs: docs/js-snippet.md */
(function (win, doc) {
  var KEY = "rs_ref";
  var CODE_RE = /^[A-Za-z0-9-]{3,32}$/;
  var CLICK_RE = /^[0-9a-f]{32}$/;
  var DEVICE_KEY = "rs_device";
  var DEVICE_RE = /^[A-Za-z0-9_-]{8,128}$/;
  var DEVICE_AGE = 63072000; // two years, in seconds
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  // RegExp.test(null) would test the string "null", so check the type first.
  function ok(re, v) { return typeof v == "string" && re.test(v) ? v : null; }
  function now() { return Math.floor(new Date() / 1000); }
  function empty() { return { code: null, click_id: null, ts: null }; }

  // localStorage may be missing or throw (Safari private mode, sandboxed iframes).
  function storage(method, key, value) {
    try { return win.localStorage[method](key, value); } catch (e) { return null; }
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

  function writeCookie(name, value, age, withDomain) {
    try {
      doc.cookie = name + "=" + value + "; path=/; max-age=" + age + "; SameSite=Lax" +
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

  function readCookie(name) {
    var m = null;
    try { m = new RegExp("(?:^|;\\s*)" + name + "=([^;]*)").exec(doc.cookie); } catch (e) {}
    return m ? decode(m[1]) : null;
  }

  // Cookie first, localStorage as the fallback when cookies are blocked.
  function attribution() {
    return parse(readCookie(KEY)) || parse(storage("getItem", KEY)) || empty();
  }

  function clear() {
    writeCookie(KEY, "", 0, true);
    if (domain) writeCookie(KEY, "", 0, false);
    storage("removeItem", KEY);
  }

  // 22 random URL-safe characters: crypto.getRandomValues where there is one, Math.random otherwise.
  function randomId() {
    var bytes = null, id = "";
    try {
      var c = win.crypto || win.msCrypto;
      if (c && c.getRandomValues) { bytes = new Uint8Array(22); c.getRandomValues(bytes); }
    } catch (e) { bytes = null; }
    for (var i = 0; i < 22; i++) {
      id += ALPHABET.charAt((bytes ? bytes[i] : Math.floor(Math.random() * 256)) & 63);
    }
    return id;
  }

  // This browser's device id: from the cookie, else localStorage (cookies blocked, or an HttpOnly rs_device of the
  // platform on the same domain hides ours), else a new one. Whichever of the two is missing is written.
  var device = null;
  function deviceId() {
    try {
      if (!device) {
        var cookie = ok(DEVICE_RE, readCookie(DEVICE_KEY)), stored = ok(DEVICE_RE, storage("getItem", DEVICE_KEY));
        device = cookie || stored || randomId();
        if (!cookie) writeCookie(DEVICE_KEY, device, DEVICE_AGE, true);
        if (!stored) storage("setItem", DEVICE_KEY, device);
      }
    } catch (e) {}
    return device || "";
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

  // The visitor's Google Analytics client id, from the shop's own GA tag's _ga cookie ("GA1.1.<id>.<time>" ->
  // "<id>.<time>"), or null: the shop sends it as ga_client_id with sign-ups and orders (GA4 events server-side).
  var GA_RE = /^GA\d+\.\d+\.(\d{1,20}\.\d{1,20})$/;
  function gaClientId() {
    var m = null;
    try { m = GA_RE.exec(readCookie("_ga") || ""); } catch (e) {}
    return m ? m[1] : null;
  }

  // GA4 referral_click: our /r/<code> cannot read the shop's _ga cookie, so the landing page tells us the click's GA
  // client id, once per click: POST <our origin>/t/ga {click_id, code, ga_client_id}, as a beacon with a text/plain
  // body (no CORS preflight, survives leaving the page). The shop's GA tag may set _ga after us: tried again a little
  // later and on the next pages until told. data-ga-click="off" never sends it; data-api-base overrides our origin.
  var GA_SENT_KEY = "rs_ga_click";
  function gaEndpoint() {
    var base = attr("api-base"), m = null;
    if (!base) {
      try { m = /^(https?:\/\/[^\/?#]+)/.exec(script.src || ""); } catch (e) {}
      base = m ? m[1] : null;
    }
    return base ? base.replace(/\/+$/, "") + "/t/ga" : null;
  }
  function sendGaClick() {
    var a = attribution(), ga = gaClientId(), url = gaEndpoint(), sent = false;
    if (!a.click_id || !a.code || !ga || !url || attr("ga-click") == "off") return false;
    if (readCookie(GA_SENT_KEY) == a.click_id || storage("getItem", GA_SENT_KEY) == a.click_id) return false;
    var body = JSON.stringify({ click_id: a.click_id, code: a.code, ga_client_id: ga });
    try {
      var nav = win.navigator;
      if (nav && nav.sendBeacon) sent = !!nav.sendBeacon(url, body);
    } catch (e) {}
    try {
      if (!sent && win.fetch) {
        win.fetch(url, { method: "POST", body: body, keepalive: true, mode: "no-cors", credentials: "omit",
          headers: { "Content-Type": "text/plain" } }).catch(function () {});
        sent = true;
      }
    } catch (e) {}
    if (sent) {
      storage("setItem", GA_SENT_KEY, a.click_id);
      writeCookie(GA_SENT_KEY, a.click_id, maxAge, true);
    }
    return sent;
  }

  // Put the attribution into hidden inputs of a checkout <form>.
  function fillForm(form) {
    var a = attribution();
    try {
      setHidden(form, "referral_code", a.code);
      setHidden(form, "referral_click_id", a.click_id);
      setHidden(form, "referral_device_id", deviceId());
      setHidden(form, "referral_ga_client_id", gaClientId());
    } catch (e) {}
    return a;
  }

  // Stripe Payment Links, pricing tables and buy buttons take the referral to Checkout as client_reference_id (the
  // click id, else the code), which the shop's Stripe connection reads: nothing to write on the shop's side.
  // data-stripe="off" leaves them alone; call ReferralSaaS.decorateStripe() again for ones added later.
  function decorateStripe() {
    var a = attribution(), ref = a.click_id || a.code, done = 0;
    if (!ref || attr("stripe") == "off") return done;
    try {
      var links = doc.querySelectorAll('a[href^="https://buy.stripe.com/"]');
      for (var i = 0; i < links.length; i++) {
        var href = links[i].getAttribute("href") || "", hash = href.indexOf("#");
        var base = hash < 0 ? href : href.slice(0, hash), rest = hash < 0 ? "" : href.slice(hash);
        if (/[?&]client_reference_id=/.test(base)) continue;
        links[i].setAttribute("href", base + (base.indexOf("?") < 0 ? "?" : "&") + "client_reference_id=" +
          encodeURIComponent(ref) + rest);
        done++;
      }
      var widgets = doc.querySelectorAll("stripe-pricing-table, stripe-buy-button");
      for (var j = 0; j < widgets.length; j++) {
        if (!widgets[j].getAttribute("client-reference-id")) {
          widgets[j].setAttribute("client-reference-id", ref);
          done++;
        }
      }
    } catch (e) {}
    return done;
  }

  // Shopify: the attribution goes into the cart's attributes (_ref, _rs_click; the leading "_" hides them from the
  // customer), which Shopify copies to the order's note_attributes: the orders/paid webhook carries them to us.
  function syncShopifyCart() {
    var a = attribution();
    if (!(a.code || a.click_id) || !win.fetch) return null;
    try {
      return win.fetch("/cart/update.js", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ attributes: { _ref: a.code || "", _rs_click: a.click_id || "",
          _ga_client_id: gaClientId() || "" } })
      }).catch(function () {});
    } catch (e) { return null; }
  }

  // Capture ?ref= / ?rs_click= on page load.
  // first_touch: keep an existing unexpired attribution; last_touch: overwrite.
  try {
    var code = ok(CODE_RE, param(paramRef)), click = ok(CLICK_RE, param(paramClick));
    if ((code || click) && (lastTouch || !attribution().ts)) {
      var json = JSON.stringify({ code: code, click_id: click, ts: now() });
      writeCookie(KEY, encodeURIComponent(json), maxAge, true);
      storage("setItem", KEY, json);
    }
  } catch (e) {}
  deviceId();
  try {
    if (doc.readyState == "loading") doc.addEventListener("DOMContentLoaded", decorateStripe);
    else decorateStripe();
  } catch (e) {}
  try { if (win.Shopify && win.Shopify.shop) syncShopifyCart(); } catch (e) {}
  try {
    if (!sendGaClick() && attribution().click_id) {
      win.setTimeout(sendGaClick, 1500);
      win.setTimeout(sendGaClick, 5000);
    }
  } catch (e) {}

  win.ReferralSaaS = {
    version: "1",
    attribution: attribution,
    clear: clear,
    decorateStripe: decorateStripe,
    deviceId: deviceId,
    fillForm: fillForm,
    gaClientId: gaClientId,
    sendGaClick: sendGaClick,
    syncShopifyCart: syncShopifyCart
  };
})(window, document);
