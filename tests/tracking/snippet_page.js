// Runs static/referral.js in a small stand-in for a browser page (node's vm), for tests/tracking/test_snippet.py.
// Usage: node snippet_page.js <referral.js> '<scenario JSON>'; prints what the page saw as JSON.
//
// Scenario: {protocol: "https:", search: "?ref=...", cookies: {name: value}, httpOnly: [names],
//            attrs: {"cookie-domain": ...} (the script tag's data-*),
//            storage: {key: value} | null (localStorage throws), crypto: true | false | "throws",
//            cookieThrows: bool, loads: n (page loads sharing cookies and storage), fillForm: bool,
//            elements: [{tag, attrs}] (what querySelectorAll finds: Stripe links and widgets), readyState,
//            shopify: bool (a Shopify storefront: window.Shopify and fetch, whose calls are recorded),
//            src: the script tag's src, beacon: true | false (sendBeacon refuses) | "throws" | absent (no sendBeacon),
//            fetch: bool (window.fetch, recorded), setCookies: {name: value} set between loads (the GA tag's _ga),
//            runTimers: bool (run what setTimeout was given, after each load)}
"use strict";
const fs = require("fs");
const vm = require("vm");
const nodeCrypto = require("crypto");

const source = fs.readFileSync(process.argv[2], "utf8");
const scenario = JSON.parse(process.argv[3]);

const jar = Object.assign({}, scenario.cookies || {}); // cookies the page's script can see
const httpOnly = new Set(scenario.httpOnly || []); // cookies a server set HttpOnly: script writes are ignored
const writes = [];
const store = scenario.storage === null ? null : Object.assign({}, scenario.storage || {});
let randomValuesCalls = 0;
const fetches = [];
const beacons = [];
let timers = [];

function cookieString() {
  if (scenario.cookieThrows) throw new Error("cookies are disabled");
  return Object.keys(jar).map((name) => name + "=" + jar[name]).join("; ");
}

function setCookie(text) {
  if (scenario.cookieThrows) throw new Error("cookies are disabled");
  writes.push(text);
  const parts = text.split(";").map((p) => p.trim());
  const eq = parts[0].indexOf("=");
  const name = parts[0].slice(0, eq);
  if (httpOnly.has(name)) return;
  const maxAge = parts.find((p) => p.toLowerCase().startsWith("max-age="));
  if (maxAge && Number(maxAge.split("=")[1]) <= 0) delete jar[name];
  else jar[name] = parts[0].slice(eq + 1);
}

function localStorage() {
  if (store === null) throw new Error("SecurityError");
  return {
    getItem: (k) => (Object.prototype.hasOwnProperty.call(store, k) ? store[k] : null),
    setItem: (k, v) => { store[k] = String(v); },
    removeItem: (k) => { delete store[k]; },
  };
}

function makeForm() {
  const inputs = [];
  return {
    inputs,
    querySelector(selector) {
      const name = /name="([^"]+)"/.exec(selector)[1];
      return inputs.find((i) => i.name === name) || null;
    },
    appendChild(input) { inputs.push(input); },
  };
}

function load() {
  const document = {
    get cookie() { return cookieString(); },
    set cookie(text) { setCookie(text); },
    currentScript: {
      src: scenario.src || "",
      getAttribute: (name) => (scenario.attrs || {})[name.replace(/^data-/, "")] || null,
    },
    getElementsByTagName: () => [],
    createElement: () => ({}),
    readyState: scenario.readyState || "complete",
    addEventListener: (name, fn) => listeners.push([name, fn]),
    querySelectorAll: (selector) => elements.filter((e) =>
      selector.startsWith("a[") ? e.tag === "a" && (e.attrs.href || "").startsWith("https://buy.stripe.com/")
        : selector.split(", ").includes(e.tag)),
  };
  const window = {
    location: { protocol: scenario.protocol || "https:", search: scenario.search || "" },
    get localStorage() { return localStorage(); },
  };
  if (scenario.shopify || scenario.fetch) {
    if (scenario.shopify) window.Shopify = { shop: "alpha-shop.myshopify.com" };
    window.fetch = (url, options) => {
      const sent = { url, method: options.method, body: JSON.parse(options.body) };
      if (options.keepalive !== undefined) {
        Object.assign(sent, { keepalive: options.keepalive, mode: options.mode, headers: options.headers });
      }
      fetches.push(sent);
      return Promise.resolve({});
    };
  }
  if (scenario.beacon !== undefined) {
    window.navigator = {
      sendBeacon(url, body) {
        if (scenario.beacon === "throws") throw new Error("beacon refused");
        beacons.push({ url, body: JSON.parse(body), type: typeof body });
        return scenario.beacon === true;
      },
    };
  }
  window.setTimeout = (fn, ms) => { timers.push([fn, ms]); };
  if (scenario.crypto === true) {
    window.crypto = { getRandomValues(a) { randomValuesCalls += 1; return nodeCrypto.randomFillSync(a); } };
  } else if (scenario.crypto === "throws") {
    window.crypto = { getRandomValues() { throw new Error("not allowed"); } };
  }
  const context = vm.createContext({ window, document, JSON, Math, Date, RegExp, Uint8Array, encodeURIComponent, decodeURIComponent, parseFloat });
  vm.runInContext(source, context);
  return { api: window.ReferralSaaS, document };
}

const listeners = [];
const elements = (scenario.elements || []).map((e) => ({
  tag: e.tag,
  attrs: Object.assign({}, e.attrs),
  getAttribute(name) { return Object.prototype.hasOwnProperty.call(this.attrs, name) ? this.attrs[name] : null; },
  setAttribute(name, value) { this.attrs[name] = String(value); },
}));

const result = { loads: [], error: null };
try {
  for (let i = 0; i < (scenario.loads || 1); i++) {
    if (i > 0) Object.assign(jar, scenario.setCookies || {});
    timers = [];
    const page = load();
    const seen = { deviceId: page.api.deviceId(), again: page.api.deviceId(), timers: timers.map((t) => t[1]) };
    if (scenario.setCookies && i === 0 && scenario.runTimers) Object.assign(jar, scenario.setCookies);
    if (scenario.runTimers) timers.forEach(([fn]) => fn());
    if (scenario.fillForm) {
      const form = makeForm();
      seen.attribution = page.api.fillForm(form);
      seen.form = Object.fromEntries(form.inputs.map((input) => [input.name, input.value]));
    }
    result.loads.push(seen);
  }
} catch (e) {
  result.error = String(e && e.stack);
}
listeners.forEach(([name, fn]) => name === "DOMContentLoaded" && fn());
result.elements = elements.map((e) => ({ tag: e.tag, attrs: e.attrs }));
result.writes = writes;
result.cookies = jar;
result.storage = store;
result.randomValuesCalls = randomValuesCalls;
result.fetches = fetches;
result.beacons = beacons;
process.stdout.write(JSON.stringify(result));
