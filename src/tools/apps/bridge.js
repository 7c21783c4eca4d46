// The view side of the MCP Apps postMessage protocol (io.modelcontextprotocol/ui, 2026-01-26),
// shared by every view of this server (inlined into each view's HTML by tools::apps).
// JSON-RPC 2.0 with the host window: requests we send get a promise, the host's notifications
// go to handlers registered with `on`, and its requests (ping, ui/resource-teardown) are answered.
// Theme, host style variables and sizing are handled here too.
"use strict";
const Bridge = (() => {
  const pending = new Map();
  const handlers = {};
  let nextId = 1;
  let context = {};
  const post = (msg) => window.parent.postMessage(msg, "*");

  window.addEventListener("message", (ev) => {
    if (ev.source !== window.parent) return;
    const m = ev.data;
    if (!m || m.jsonrpc !== "2.0") return;
    if (m.method === undefined && m.id !== undefined) {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new Error(m.error.message || "error " + m.error.code));
      else p.resolve(m.result);
      return;
    }
    if (m.id !== undefined) {
      // A request from the host.
      if (m.method === "ping" || m.method === "ui/resource-teardown") {
        post({ jsonrpc: "2.0", id: m.id, result: {} });
      } else {
        post({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "method not found: " + m.method } });
      }
      return;
    }
    if (m.method === "ui/notifications/host-context-changed") applyContext(m.params || {});
    const h = handlers[m.method];
    if (h) h(m.params || {});
  });

  function request(method, params, timeoutMs) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(method + " timed out"));
      }, timeoutMs || 120000);
      pending.set(id, { resolve, reject, timer });
      post({ jsonrpc: "2.0", id, method, params: params || {} });
    });
  }

  function notify(method, params) {
    post({ jsonrpc: "2.0", method, params: params || {} });
  }

  function on(method, handler) {
    handlers[method] = handler;
  }

  // hostContext: theme (light/dark), the standard CSS variables, fonts, container size.
  function applyContext(ctx) {
    context = Object.assign({}, context, ctx);
    const root = document.documentElement;
    if (ctx.theme === "light" || ctx.theme === "dark") {
      root.dataset.theme = ctx.theme;
      root.style.colorScheme = ctx.theme;
    }
    const vars = ctx.styles && ctx.styles.variables;
    if (vars) {
      for (const [k, v] of Object.entries(vars)) {
        if (k.startsWith("--") && typeof v === "string") root.style.setProperty(k, v);
      }
    }
    const fonts = ctx.styles && ctx.styles.css && ctx.styles.css.fonts;
    if (typeof fonts === "string" && !document.getElementById("host-fonts")) {
      const s = document.createElement("style");
      s.id = "host-fonts";
      s.textContent = fonts;
      document.head.appendChild(s);
    }
    const dim = ctx.containerDimensions;
    if (dim) {
      if (typeof dim.height === "number") root.classList.add("fixed-height");
      if (typeof dim.maxHeight === "number") root.style.setProperty("--max-height", dim.maxHeight + "px");
    }
  }

  // ui/notifications/size-changed whenever the content's size changes.
  let last = "";
  function reportSize() {
    // The content's own size (the document's scroll size never shrinks below the frame's).
    // Overlays marked data-fit (e.g. a detail panel) count too while shown.
    const rect = document.body.getBoundingClientRect();
    const width = Math.ceil(Math.max(rect.width, document.body.scrollWidth));
    let height = rect.height;
    for (const e of document.querySelectorAll("[data-fit]:not([hidden])")) height = Math.max(height, e.scrollHeight);
    height = Math.ceil(height);
    const key = width + "x" + height;
    if (key === last) return;
    last = key;
    notify("ui/notifications/size-changed", { width, height });
  }
  let queued = false;
  const observer = new ResizeObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      reportSize();
    });
  });

  // The handshake: ui/initialize -> the host's reply -> ui/notifications/initialized.
  async function connect(appInfo) {
    const result = await request("ui/initialize", {
      appCapabilities: { availableDisplayModes: ["inline"] },
      appInfo,
      protocolVersion: "2026-01-26",
    });
    applyContext((result && result.hostContext) || {});
    notify("ui/notifications/initialized", {});
    observer.observe(document.body);
    for (const e of document.querySelectorAll("[data-fit]")) observer.observe(e);
    reportSize();
    return result || {};
  }

  return { request, notify, on, connect, context: () => context };
})();
