// Cadenza web UI: runs list and run pages over the HTTP API (same origin, /api/v1/...).
// Plain JavaScript, no build step and no library. Pages route on the URL's fragment:
//   #/                          runs of the domain (query, status filter, pages)
//   #/runs/<workflow id>/<run id>   one run: summary, timeline, history, actions
//   #/api[/<operationId>]       the HTTP API's OpenAPI document, browsable (one route open)
"use strict";

(function () {
  const LIST_PAGE_SIZE = 50;
  const LIST_REFRESH_MS = 5000;
  const RUN_REFRESH_MS = 2500;
  // Past these, the timeline and the history show their first rows and a button for the rest
  // (a fan-out of thousands of activities stays quick to draw).
  const TIMELINE_ROWS = 80;
  const HISTORY_ROWS = 1000;
  const STATUSES = [
    ["", "All"], ["open", "Open"], ["closed", "Closed"], ["completed", "Completed"],
    ["failed", "Failed"], ["canceled", "Canceled"], ["terminated", "Terminated"],
    ["continued_as_new", "Continued as new"], ["timed_out", "Timed out"],
  ];
  const SVG_NS = "http://www.w3.org/2000/svg";

  let refreshTimer = null;
  let pageToken = 0; // bumps on every navigation: stale answers of the last page are dropped

  // ---- small helpers ---------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    applyAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(key, String(value));
    }
    append(node, children);
    return node;
  }

  function applyAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  const enc = encodeURIComponent;

  function domain() {
    return document.getElementById("domain").value.trim() || "default";
  }

  function pad(n, width) { return String(n).padStart(width || 2, "0"); }

  // Local time, ISO order, milliseconds: 2026-12-01 16:04:05.123 (the tooltip has UTC).
  function fmtTime(millis, withMs) {
    if (millis === null || millis === undefined || millis === "") return "";
    const d = new Date(Number(millis));
    const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withMs === false ? text : `${text}.${pad(d.getMilliseconds(), 3)}`;
  }

  function timeNode(millis, withMs) {
    if (!millis) return h("span", { class: "muted", text: "—" });
    return h("time", { datetime: new Date(Number(millis)).toISOString(),
                       title: new Date(Number(millis)).toISOString(),
                       text: fmtTime(millis, withMs) });
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return "";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const sec = ms / 1000;
    if (sec < 60) return `${sec.toFixed(sec < 10 ? 2 : 1)} s`;
    const min = Math.floor(sec / 60);
    if (min < 60) return `${min}m ${pad(Math.floor(sec % 60))}s`;
    const hours = Math.floor(min / 60);
    if (hours < 48) return `${hours}h ${pad(min % 60)}m`;
    return `${Math.floor(hours / 24)}d ${hours % 24}h`;
  }

  function fmtSeconds(value) {
    return value ? fmtDuration(Number(value) * 1000) : "—";
  }

  // A payload is JSON values separated by whitespace (the data converter's format).
  function splitPayload(text, strict) {
    if (text === null || text === undefined) return [];
    const values = [];
    const n = text.length;
    let i = 0;
    while (i < n) {
      while (i < n && /\s/.test(text[i])) i++;
      if (i >= n) break;
      const start = i;
      let depth = 0;
      let inString = false;
      for (; i < n; i++) {
        const c = text[i];
        if (inString) {
          if (c === "\\") i++;
          else if (c === '"') {
            inString = false;
            if (depth === 0) { i++; break; }
          }
          continue;
        }
        if (c === '"') inString = true;
        else if (c === "{" || c === "[") depth++;
        else if (c === "}" || c === "]") {
          depth--;
          if (depth === 0) { i++; break; }
        } else if (depth === 0 && /\s/.test(c)) break;
      }
      const piece = text.slice(start, i);
      try {
        values.push(JSON.parse(piece));
      } catch (error) {
        if (strict) throw new Error(`not JSON: ${piece.slice(0, 60)}`);
        return [text];
      }
    }
    return values;
  }

  function encodeArgs(text) {
    const values = splitPayload(text.trim(), true);
    return values.length ? values.map((v) => JSON.stringify(v)).join(" ") : null;
  }

  function pretty(value) { return JSON.stringify(value, null, 2); }

  function payloadNode(text, emptyText) {
    if (text === null || text === undefined || text === "") {
      return h("p", { class: "muted", text: emptyText || "none" });
    }
    const values = splitPayload(text);
    const shown = values.length === 1 ? values[0] : values;
    return h("pre", { class: "json" }, typeof shown === "string" ? JSON.stringify(shown)
      : pretty(shown));
  }

  const PAYLOAD_KEYS = new Set(["input", "result", "details", "heartbeat_details",
    "last_completion_result", "control", "query_args"]);

  // Attributes with their payloads decoded, for the expandable history rows.
  function readableAttributes(attributes) {
    const out = {};
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined) continue;
      if (PAYLOAD_KEYS.has(key) && typeof value === "string") {
        const values = splitPayload(value);
        out[key] = values.length === 1 ? values[0] : values;
      } else {
        out[key] = value;
      }
    }
    return out;
  }

  function statusPill(status) {
    const name = String(status || "OPEN").toUpperCase();
    return h("span", { class: `pill status-${name.toLowerCase()}`, dataset: { status: name } },
      name === "OPEN" ? h("span", { class: "pulse" }) : null,
      name.replaceAll("_", " ").toLowerCase());
  }

  function runHref(workflowId, runId) {
    return `#/runs/${enc(workflowId)}/${enc(runId || "")}`;
  }

  function runLink(workflowId, runId, text) {
    return h("a", { href: runHref(workflowId, runId), class: "mono", text: text || workflowId });
  }

  function copyButton(text) {
    return h("button", {
      class: "icon-button", type: "button", title: "Copy", "aria-label": "Copy",
      onclick: (event) => {
        event.preventDefault();
        navigator.clipboard?.writeText(text).then(() => toast("Copied"), () => {});
      },
    }, s("svg", { viewBox: "0 0 16 16", fill: "none", stroke: "currentColor", "stroke-width": 1.5 },
      s("rect", { x: 5.5, y: 5.5, width: 8, height: 8, rx: 1.5 }),
      s("path", { d: "M10.5 3.5v-1a1 1 0 0 0-1-1h-6a1 1 0 0 0-1 1v6a1 1 0 0 0 1 1h1" })));
  }

  function newRequestId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16))
      .join("");
  }

  // ---- the API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || "Error";
    }
  }

  async function api(method, path, { params, body } = {}) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") query.set(key, value);
    }
    const url = `/api/v1${path}${query.toString() ? `?${query}` : ""}`;
    // X-Cadenza-UI: the UI server forwards only calls that carry it (no cross-site request
    // can add it), so another page in the browser cannot act with the user's credentials.
    const options = { method, headers: { Accept: "application/json", "X-Cadenza-UI": "1" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      throw new ApiError(0, { code: "NetworkError", message: `cannot reach the UI server: ${error}` });
    }
    let answer = {};
    const text = await response.text();
    if (text) {
      try { answer = JSON.parse(text); } catch (error) { answer = { message: text }; }
    }
    if (!response.ok) throw new ApiError(response.status, answer);
    return answer;
  }

  function workflowPath(workflowId, suffix) {
    return `/domains/${enc(domain())}/workflows/${enc(workflowId)}${suffix || ""}`;
  }

  async function loadHistory(workflowId, runId) {
    const events = [];
    let token = null;
    do {
      const page = await api("GET", workflowPath(workflowId, "/history"), {
        params: { run_id: runId, page_size: 1000, next_page_token: token },
      });
      events.push(...page.events);
      token = page.next_page_token;
    } while (token);
    return events;
  }

  // The history as `cadenza workflow show --json` writes it: what the Replayer reads.
  function historyJson(events) {
    return JSON.stringify(events, null, 2) + "\n";
  }

  // ---- banner, toast, dialogs ------------------------------------------------------------

  function showError(error) {
    const banner = document.getElementById("banner");
    // An IAM-protected API (cadenza dev --auth iam, a deployed stack) refuses the browser's
    // unsigned calls: `cadenza ui --address` signs them with the user's credentials.
    const hint = error.status === 403 && error.code !== "ForbiddenError"
      ? ". This API wants signed requests: serve the UI with `cadenza ui --address <API URL>`, which signs them with your AWS credentials."
      : "";
    banner.replaceChildren(
      h("strong", { text: error.code || "Error" }), " ", (error.message || String(error)) + hint,
      h("button", { class: "icon-button", type: "button", "aria-label": "Dismiss",
                    onclick: () => { banner.hidden = true; } }, "×"));
    banner.hidden = false;
  }

  function clearError() { document.getElementById("banner").hidden = true; }

  let toastTimer = null;
  function toast(text) {
    const node = document.getElementById("toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, 3500);
  }

  // A modal form: fields, a confirm button; `run(values)` performs the action. The dialog
  // stays open with the error when it fails, and shows `run`'s answer when it returns a node.
  function openDialog({ title, text, fields, confirm, danger, run, id }) {
    const dialog = document.getElementById("dialog");
    const errorBox = h("p", { class: "dialog-error", hidden: true });
    const answerBox = h("div", { class: "dialog-answer" });
    const inputs = {};
    const form = h("form", { method: "dialog", id: id || null });
    const confirmButton = h("button", {
      type: "submit", class: danger ? "button danger" : "button primary",
      dataset: { confirm: "" }, text: confirm,
    });
    append(form, [
      h("h2", { text: title }),
      text ? h("p", { class: "dialog-text" }, text) : null,
      (fields || []).map((field) => {
        let input;
        if (field.options) {
          input = h("select", { name: field.name },
            field.options.map(([value, label]) => h("option", { value, text: label,
              selected: String(value) === String(field.value) })));
        } else if (field.multiline) {
          input = h("textarea", { name: field.name, rows: 4, spellcheck: "false",
                                  placeholder: field.placeholder || "" });
          input.value = field.value || "";
        } else {
          input = h("input", { name: field.name, spellcheck: "false", autocomplete: "off",
                               placeholder: field.placeholder || "",
                               list: field.list || null, required: field.required || false });
          input.value = field.value || "";
        }
        inputs[field.name] = input;
        return h("label", { class: "field" }, h("span", { text: field.label }), input,
          field.hint ? h("small", { class: "muted", text: field.hint }) : null,
          field.datalist || null);
      }),
      errorBox, answerBox,
      h("div", { class: "dialog-buttons" },
        h("button", { type: "button", class: "button", text: "Close",
                      onclick: () => dialog.close() }),
        confirmButton)]);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errorBox.hidden = true;
      confirmButton.disabled = true;
      const values = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value]));
      try {
        const shown = await run(values);
        if (shown instanceof Node) answerBox.replaceChildren(shown);
        else dialog.close();
      } catch (error) {
        errorBox.textContent = `${error.code ? `${error.code}: ` : ""}${error.message}`;
        errorBox.hidden = false;
      } finally {
        confirmButton.disabled = false;
      }
    });
    dialog.replaceChildren(form);
    dialog.showModal();
    const first = Object.values(inputs)[0];
    if (first) first.focus();
    return { dialog, inputs };
  }

  // ---- routing ---------------------------------------------------------------------------

  function route() {
    clearInterval(refreshTimer);
    refreshTimer = null;
    pageToken += 1;
    clearError();
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, queryText] = hash.split("?");
    const params = new URLSearchParams(queryText || "");
    if (params.get("domain")) document.getElementById("domain").value = params.get("domain");
    const parts = path.split("/").filter(Boolean);
    document.getElementById("nav-api").classList.toggle("active", parts[0] === "api");
    document.getElementById("nav-runs").classList.toggle("active", parts[0] !== "api");
    if (parts[0] === "runs" && parts.length >= 2) {
      renderRun(decodeURIComponent(parts[1]), decodeURIComponent(parts[2] || ""));
    } else if (parts[0] === "api") {
      renderApi(decodeURIComponent(parts[1] || ""));
    } else {
      renderList(params);
    }
  }

  function setCrumbs(...items) {
    const crumbs = document.getElementById("crumbs");
    crumbs.replaceChildren(h("a", { href: "#/", text: "Runs" }));
    append(crumbs, items.map((item) => [h("span", { class: "sep", text: "/" }), item]));
  }

  // ---- runs list -------------------------------------------------------------------------

  function renderList(params) {
    const token = pageToken;
    setCrumbs();
    const app = document.getElementById("app");
    const status = params.get("status") || "";
    const query = params.get("query") || "";
    const pageSize = Math.max(1, Number(params.get("page_size")) || LIST_PAGE_SIZE);
    const state = { rows: [], next: null };

    const queryInput = h("input", {
      id: "list-query", name: "query", class: "query-input", spellcheck: "false",
      placeholder: "WorkflowType = 'Order' AND CloseStatus = 'FAILED' AND StartTime > '2026-12-01T00:00:00Z'",
    });
    queryInput.value = query;
    const autoRefresh = h("input", { type: "checkbox", id: "auto-refresh", checked: true });
    const tbody = h("tbody", { id: "runs-body" });
    const moreButton = h("button", { class: "button", type: "button", id: "load-more",
                                     text: "Load more", hidden: true,
                                     onclick: () => load(false) });
    const countNode = h("span", { class: "muted", id: "runs-count" });
    const refreshedNode = h("span", { class: "muted small" });

    function navigate(nextStatus, nextQuery) {
      const search = new URLSearchParams();
      if (nextQuery) search.set("query", nextQuery);
      if (nextStatus) search.set("status", nextStatus);
      if (params.get("page_size")) search.set("page_size", params.get("page_size"));
      const text = search.toString();
      location.hash = `#/${text ? `?${text}` : ""}`;
    }

    app.replaceChildren(
      h("div", { class: "page-head" },
        h("h1", { text: "Workflow runs" }),
        h("div", { class: "head-side" }, countNode,
          h("label", { class: "toggle" }, autoRefresh, "Auto-refresh"), refreshedNode)),
      h("form", { class: "query-bar", id: "query-form",
                  onsubmit: (e) => { e.preventDefault(); navigate(status, queryInput.value.trim()); } },
        queryInput,
        h("button", { class: "button primary", type: "submit", text: "Search" }),
        query ? h("button", { class: "button", type: "button", text: "Clear",
                              onclick: () => navigate(status, "") }) : null),
      h("div", { class: "chips", role: "tablist" },
        STATUSES.map(([value, label]) => h("button", {
          type: "button", role: "tab", class: value === status ? "chip active" : "chip",
          dataset: { status: value || "all" }, text: label,
          onclick: () => navigate(value, query),
        }))),
      h("div", { class: "card table-card" },
        h("table", { class: "runs" },
          h("thead", {}, h("tr", {},
            ["Status", "Workflow ID", "Run ID", "Type", "Started", "Closed", "Duration",
             "Events"].map((title) => h("th", { text: title })))),
          tbody)),
      h("div", { class: "list-foot" }, moreButton));

    function row(run) {
      const started = Number(run.start_time);
      const closed = run.close_time ? Number(run.close_time) : null;
      const href = runHref(run.workflow_id, run.run_id);
      return h("tr", { class: "run-row", dataset: { workflowId: run.workflow_id, runId: run.run_id },
                       onclick: (e) => { if (e.target.tagName !== "A") location.hash = href; } },
        h("td", {}, statusPill(run.close_status || run.status)),
        h("td", { class: "wrap" }, h("a", { href, class: "mono strong", text: run.workflow_id })),
        h("td", { class: "mono small wrap", text: run.run_id }),
        h("td", { text: run.workflow_type }),
        h("td", { class: "nowrap" }, timeNode(started, false)),
        h("td", { class: "nowrap" }, closed ? timeNode(closed, false) : h("span", { class: "muted", text: "running" })),
        h("td", { class: "nowrap", text: fmtDuration((closed || Date.now()) - started) }),
        h("td", { class: "num", text: run.history_length ?? "" }));
    }

    function draw() {
      tbody.replaceChildren(...state.rows.map(row));
      if (!state.rows.length) {
        tbody.append(h("tr", {}, h("td", { colspan: 8, class: "empty" },
          query || status ? "No run matches." : "No runs yet. Start one with `cadenza workflow start`.")));
      }
      moreButton.hidden = !state.next;
      countNode.textContent = `${state.rows.length}${state.next ? "+" : ""} run${state.rows.length === 1 ? "" : "s"}`;
      refreshedNode.textContent = `updated ${fmtTime(Date.now(), false).slice(11)}`;
    }

    // first: page one again (a refresh asks for as many rows as are shown, in one request).
    async function load(first) {
      try {
        const size = first ? Math.max(pageSize, state.rows.length) : pageSize;
        const page = await api("GET", `/domains/${enc(domain())}/workflows`, {
          params: { query, status, page_size: size, next_page_token: first ? null : state.next },
        });
        if (token !== pageToken) return;
        state.rows = first ? page.executions : state.rows.concat(page.executions);
        state.next = page.next_page_token || null;
        clearError();
        draw();
      } catch (error) {
        if (token !== pageToken) return;
        showError(error);
        if (!state.rows.length) {
          tbody.replaceChildren(h("tr", {}, h("td", { colspan: 8, class: "empty error-text",
                                                      text: error.message })));
        }
      }
    }

    load(true);
    refreshTimer = setInterval(() => {
      if (autoRefresh.checked && !document.hidden && !document.getElementById("dialog").open) {
        load(true);
      }
    }, LIST_REFRESH_MS);
  }

  // ---- run page --------------------------------------------------------------------------

  function renderRun(workflowId, runId) {
    const token = pageToken;
    const app = document.getElementById("app");
    setCrumbs(h("span", { class: "mono", text: workflowId }));
    app.replaceChildren(h("p", { class: "muted", text: "Loading run…" }));
    const view = { workflowId, runId, describe: null, events: [], key: "", stack: null,
                   stackError: null, expanded: new Set(), selected: null };

    async function refresh(force) {
      try {
        const describe = await api("GET", workflowPath(workflowId), { params: { run_id: view.runId } });
        const key = JSON.stringify(describe);
        if (!force && key === view.key) return;
        const events = await loadHistory(workflowId, describe.run_id);
        if (token !== pageToken) return;
        const wasOpen = view.describe && view.describe.status === "OPEN";
        const redraw = view.describe !== null;
        view.describe = describe;
        view.events = events;
        view.key = key;
        if (!view.runId) {
          // Opened as "the current run": keep showing this run from now on.
          view.runId = describe.run_id;
          history.replaceState(null, "", runHref(workflowId, describe.run_id));
        }
        view.refresh = refresh;
        drawRun(view, refresh, redraw);
        if (describe.status === "OPEN" && (view.stack === null || !wasOpen)) loadStack(view);
        if (describe.status !== "OPEN" && refreshTimer) {
          clearInterval(refreshTimer);
          refreshTimer = null;
        }
      } catch (error) {
        if (token !== pageToken) return;
        showError(error);
        if (!view.describe) {
          app.replaceChildren(h("div", { class: "card empty-card" },
            h("h2", { text: "Cannot show this run" }), h("p", { text: error.message }),
            h("a", { href: "#/", class: "button", text: "Back to runs" })));
        }
      }
    }

    refresh(true);
    refreshTimer = setInterval(() => {
      if (!document.hidden && !document.getElementById("dialog").open) refresh(false);
    }, RUN_REFRESH_MS);
  }

  async function loadStack(view) {
    const token = pageToken;
    view.stack = "";
    view.stackError = null;
    drawStack(view);
    try {
      const answer = await api("POST", workflowPath(view.workflowId, "/query"), {
        body: { run_id: view.describe.run_id, query_type: "__stack_trace", wait_seconds: 10 },
      });
      if (token !== pageToken) return;
      const values = splitPayload(answer.result);
      view.stack = values.length ? String(values[0]) : "";
    } catch (error) {
      if (token !== pageToken) return;
      view.stack = null;
      view.stackError = error.code === "QueryTimeoutError"
        ? `No worker answered: is a worker polling task list "${view.describe.task_list}"?`
        : `${error.code}: ${error.message}`;
    }
    drawStack(view);
  }

  function drawStack(view) {
    const box = document.getElementById("stack-trace");
    if (!box) return;
    if (view.stackError) {
      box.replaceChildren(h("p", { class: "error-text", text: view.stackError }));
    } else if (view.stack === "" || view.stack === null) {
      box.replaceChildren(h("p", { class: "muted", text: "Asking a worker for the stack…" }));
    } else {
      box.replaceChildren(h("pre", { class: "stack", id: "stack-text", text: view.stack }));
    }
  }

  function startedEvent(view) {
    return view.events.find((e) => e.event_type === "WorkflowExecutionStarted");
  }

  function closeEvent(view) {
    const last = view.events[view.events.length - 1];
    return last && /^WorkflowExecution(Completed|Failed|Canceled|Terminated|TimedOut|ContinuedAsNew)$/
      .test(last.event_type) ? last : null;
  }

  // redraw: the same run again (a refresh): the reader's scroll position is kept.
  function drawRun(view, refresh, redraw) {
    const d = view.describe;
    const app = document.getElementById("app");
    const open = d.status === "OPEN";
    const started = startedEvent(view);
    const closing = closeEvent(view);
    const attrs = (started && started.attributes) || {};
    const start = Number(d.start_time);
    const end = d.close_time ? Number(d.close_time) : Date.now();

    const links = [];
    if (d.parent) {
      links.push(["Parent", runLink(d.parent.workflow_id, d.parent.run_id)]);
    }
    if (attrs.continued_execution_run_id) {
      links.push(["Continued from", runLink(d.workflow_id, attrs.continued_execution_run_id,
                                            attrs.continued_execution_run_id)]);
    }
    if (d.new_execution_run_id) {
      links.push(["Continued as", runLink(d.workflow_id, d.new_execution_run_id,
                                          d.new_execution_run_id)]);
    }
    if (d.first_execution_run_id && d.first_execution_run_id !== d.run_id) {
      links.push(["First run", runLink(d.workflow_id, d.first_execution_run_id,
                                       d.first_execution_run_id)]);
    }
    const children = childRuns(view.events);
    if (children.length) {
      links.push(["Children", h("span", { class: "link-list" }, children.map((child) =>
        h("span", { class: "child-link" }, runLink(child.workflowId, child.runId),
          h("span", { class: "muted small", text: ` ${child.type}` }))))]);
    }

    const facts = [
      ["Workflow ID", h("span", { class: "mono", id: "run-workflow-id" }, d.workflow_id, copyButton(d.workflow_id))],
      ["Run ID", h("span", { class: "mono", id: "run-run-id" }, d.run_id, copyButton(d.run_id))],
      ["Task list", h("span", { class: "mono", text: d.task_list })],
      ["Started", timeNode(start)],
      ["Closed", d.close_time ? timeNode(d.close_time) : h("span", { class: "muted", text: "still open" })],
      ["Duration", fmtDuration(end - start) + (open ? " so far" : "")],
      ["Events", String(d.history_length)],
      ["Attempt", String(d.attempt ?? 0)],
      d.cron_schedule ? ["Cron", h("span", { class: "mono", text: d.cron_schedule })] : null,
      ["Execution timeout", fmtSeconds(d.execution_start_to_close_timeout_seconds)],
      d.search_attributes ? ["Search attributes", keyValues(d.search_attributes)] : null,
      d.memo ? ["Memo", keyValues(d.memo)] : null,
      ...links,
    ].filter(Boolean);

    const actions = h("div", { class: "actions", id: "run-actions" },
      open ? h("button", { class: "button", type: "button", id: "action-signal", text: "Signal",
                           onclick: () => signalDialog(view, refresh) }) : null,
      h("button", { class: "button", type: "button", id: "action-query", text: "Query",
                    onclick: () => queryDialog(view) }),
      h("button", { class: "button", type: "button", id: "action-reset", text: "Reset",
                    onclick: () => resetDialog(view, null) }),
      open ? h("button", { class: "button", type: "button", id: "action-cancel", text: "Cancel",
                           onclick: () => cancelDialog(view, refresh) }) : null,
      open ? h("button", { class: "button danger", type: "button", id: "action-terminate",
                           text: "Terminate", onclick: () => terminateDialog(view, refresh) }) : null,
      h("button", { class: "button", type: "button", id: "action-download",
                    title: "The history as `cadenza workflow show --json` writes it (the Replayer reads it)",
                    text: "Download history", onclick: () => downloadHistory(view) }));

    const resultCard = closing ? closeCard(closing, d.workflow_id) : h("div", { class: "card io" },
      h("h3", { text: "Result" }), h("p", { class: "muted", text: "The run is still open." }));

    const sections = [
      h("section", { class: "card run-head" },
        h("div", { class: "run-title" },
          h("div", {},
            h("div", { class: "eyebrow", text: "Workflow" }),
            h("h1", { id: "run-type", text: d.workflow_type })),
          statusPill(d.status)),
        actions,
        h("dl", { class: "facts" }, facts.map(([label, value]) =>
          h("div", { class: "fact" }, h("dt", { text: label }), h("dd", {}, value))))),
      h("div", { class: "io-grid" },
        h("div", { class: "card io" }, h("h3", { text: "Input" }),
          payloadNode(attrs.input, "no arguments")),
        resultCard),
      h("section", { class: "card", id: "timeline-card" },
        h("div", { class: "card-head" }, h("h2", { text: "Timeline" }),
          h("span", { class: "muted small", text: open ? "live: refreshes while the run is open" : "" })),
        timeline(view)),
    ];
    if (d.pending_activities && d.pending_activities.length) {
      sections.push(h("section", { class: "card", id: "pending-card" },
        h("h2", { text: `Pending activities (${d.pending_activities.length})` }),
        pendingTable(d.pending_activities)));
    }
    if (open) {
      sections.push(h("section", { class: "card", id: "stack-card" },
        h("div", { class: "card-head" }, h("h2", { text: "Current stack" }),
          h("button", { class: "button small", type: "button", id: "stack-refresh",
                        text: "Refresh", onclick: () => loadStack(view) })),
        h("p", { class: "muted small", text: "Where each coroutine of the workflow waits, from the __stack_trace query a worker answers by replaying the run." }),
        h("div", { id: "stack-trace" })));
    }
    sections.push(h("section", { class: "card", id: "history-card" },
      h("div", { class: "card-head" },
        h("h2", { text: `History (${view.events.length} events)` }),
        h("div", { class: "head-side" },
          h("button", { class: "button small", type: "button", text: "Expand all",
                        onclick: () => { view.events.forEach((e) => view.expanded.add(e.event_id)); drawHistory(view); } }),
          h("button", { class: "button small", type: "button", text: "Collapse all",
                        onclick: () => { view.expanded.clear(); drawHistory(view); } }))),
      h("div", { id: "history-table" })));

    const scrollY = window.scrollY;
    app.replaceChildren(...sections);
    drawHistory(view);
    drawStack(view);
    window.scrollTo(0, redraw ? scrollY : 0);
  }

  function keyValues(mapping) {
    return h("span", { class: "link-list" }, Object.entries(mapping).map(([key, value]) =>
      h("span", { class: "kv" }, h("span", { class: "k", text: key }),
        h("span", { class: "v mono", text: typeof value === "string" ? value : JSON.stringify(value) }))));
  }

  function closeCard(event, workflowId) {
    const a = event.attributes || {};
    const type = event.event_type;
    let body;
    if (type === "WorkflowExecutionCompleted") body = payloadNode(a.result, "no result (None)");
    else if (type === "WorkflowExecutionContinuedAsNew") {
      body = h("p", { id: "continued-as" }, "Continued as new run ",
        runLink(workflowId, a.new_execution_run_id, a.new_execution_run_id));
    } else {
      const reason = a.reason || a.cause || a.timeout_type || "";
      body = h("div", {}, reason ? h("p", { class: "error-text strong", text: reason }) : null,
        a.details ? payloadNode(a.details) : null);
    }
    return h("div", { class: "card io" },
      h("h3", { text: type === "WorkflowExecutionCompleted" ? "Result" : type.replace("WorkflowExecution", "") }),
      body);
  }

  function childRuns(events) {
    const children = new Map();
    for (const event of events) {
      const a = event.attributes || {};
      if (event.event_type === "StartChildWorkflowExecutionInitiated") {
        children.set(event.event_id, { workflowId: a.workflow_id, runId: "", type: a.workflow_type });
      } else if (event.event_type === "ChildWorkflowExecutionStarted" && children.has(a.initiated_event_id)) {
        children.get(a.initiated_event_id).runId = (a.workflow_execution || {}).run_id || "";
      }
    }
    return [...children.values()];
  }

  // ---- timeline --------------------------------------------------------------------------

  const CLOSES = {
    ActivityTaskCompleted: "completed", ActivityTaskFailed: "failed",
    ActivityTaskTimedOut: "timed_out", ActivityTaskCanceled: "canceled",
    TimerFired: "fired", TimerCanceled: "canceled",
    ChildWorkflowExecutionCompleted: "completed", ChildWorkflowExecutionFailed: "failed",
    ChildWorkflowExecutionCanceled: "canceled", ChildWorkflowExecutionTimedOut: "timed_out",
    ChildWorkflowExecutionTerminated: "terminated", StartChildWorkflowExecutionFailed: "failed",
    ExternalWorkflowExecutionSignaled: "completed", SignalExternalWorkflowExecutionFailed: "failed",
    ExternalWorkflowExecutionCancelRequested: "completed",
    RequestCancelExternalWorkflowExecutionFailed: "failed",
  };

  // Rows of the timeline, in the order their first event appears.
  function timelineItems(view) {
    const items = [];
    const byScheduled = new Map();
    const timers = new Map();
    const initiated = new Map();
    const now = Date.now();
    for (const event of view.events) {
      const a = event.attributes || {};
      const t = Number(event.timestamp);
      switch (event.event_type) {
        case "ActivityTaskScheduled": {
          const item = { kind: "activity", label: a.activity_type, sub: `activity ${a.activity_id}`,
                         start: t, started: null, end: null, outcome: null, attempt: 0,
                         events: [event.event_id], detail: a };
          byScheduled.set(event.event_id, item);
          items.push(item);
          break;
        }
        case "ActivityTaskStarted": {
          const item = byScheduled.get(a.scheduled_event_id);
          if (item) {
            item.started = t; item.attempt = a.attempt || 0;
            item.lastFailure = a.last_failure_reason; item.events.push(event.event_id);
          }
          break;
        }
        case "TimerStarted": {
          const item = { kind: "timer", label: `timer ${a.timer_id}`,
                         sub: fmtSeconds(a.start_to_fire_timeout_seconds), start: t, end: null,
                         outcome: null, events: [event.event_id], detail: a };
          timers.set(event.event_id, item);
          items.push(item);
          break;
        }
        case "StartChildWorkflowExecutionInitiated":
        case "SignalExternalWorkflowExecutionInitiated":
        case "RequestCancelExternalWorkflowExecutionInitiated": {
          const child = event.event_type.startsWith("StartChild");
          const signal = event.event_type.startsWith("Signal");
          const item = { kind: child ? "child" : "external",
                         label: child ? a.workflow_type : (signal ? `signal ${a.signal_name}` : "cancel request"),
                         sub: child ? "child workflow" : `to ${(a.workflow_execution || {}).workflow_id || a.workflow_id || ""}`,
                         start: t, end: null, outcome: null, events: [event.event_id], detail: a,
                         workflowId: child ? a.workflow_id : null, runId: "" };
          initiated.set(event.event_id, item);
          items.push(item);
          break;
        }
        case "ChildWorkflowExecutionStarted": {
          const item = initiated.get(a.initiated_event_id);
          if (item) {
            item.started = t; item.runId = (a.workflow_execution || {}).run_id || "";
            item.events.push(event.event_id);
          }
          break;
        }
        case "WorkflowExecutionSignaled":
          items.push({ kind: "signal", label: `signal ${a.signal_name}`, sub: "received",
                       start: t, end: t, point: true, events: [event.event_id], detail: a });
          break;
        case "MarkerRecorded":
          items.push({ kind: "marker", label: a.marker_name, sub: "marker", start: t, end: t,
                       point: true, events: [event.event_id], detail: a });
          break;
        case "WorkflowExecutionCancelRequested":
          items.push({ kind: "signal", label: "cancel requested", sub: a.cause || "", start: t,
                       end: t, point: true, events: [event.event_id], detail: a });
          break;
        default: {
          const outcome = CLOSES[event.event_type];
          if (!outcome) break;
          const item = byScheduled.get(a.scheduled_event_id) || timers.get(a.started_event_id)
            || initiated.get(a.initiated_event_id);
          if (item && item.end === null) {
            item.end = t; item.outcome = outcome; item.events.push(event.event_id);
            item.reason = a.reason || a.timeout_type || a.cause || null;
          }
        }
      }
    }
    const runEnd = view.describe.close_time ? Number(view.describe.close_time) : now;
    for (const item of items) {
      if (item.end === null) { item.end = runEnd; item.pending = view.describe.status === "OPEN"; }
    }
    // Pending activities of describe: attempts and heartbeats the history does not hold yet.
    for (const pending of view.describe.pending_activities || []) {
      const item = byScheduled.get(pending.scheduled_event_id);
      if (item) {
        item.attempt = pending.attempt || item.attempt;
        if (pending.started_time) item.started = Number(pending.started_time);
        item.heartbeat = pending.last_heartbeat_time ? Number(pending.last_heartbeat_time) : null;
        item.lastFailure = pending.last_failure_reason || item.lastFailure;
      }
    }
    return items;
  }

  function niceStep(span, ticks) {
    const raw = span / ticks;
    const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000,
      60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000, 21600000, 43200000,
      86400000];
    return steps.find((step) => step >= raw) || Math.ceil(raw / 86400000) * 86400000;
  }

  function fmtOffset(ms, step) {
    if (step < 1000) return `+${ms} ms`;
    if (step < 60000) return `+${(ms / 1000).toFixed(step % 1000 ? 1 : 0)}s`;
    if (step < 3600000) return `+${Math.round(ms / 60000)}m`;
    if (step < 86400000) return `+${(ms / 3600000).toFixed(step % 3600000 ? 1 : 0)}h`;
    return `+${(ms / 86400000).toFixed(1)}d`;
  }

  function timeline(view) {
    const allItems = timelineItems(view);
    const items = view.timelineAll ? allItems : allItems.slice(0, TIMELINE_ROWS);
    const d = view.describe;
    const start = Number(d.start_time);
    const runEnd = d.close_time ? Number(d.close_time) : Date.now();
    const span = Math.max(runEnd - start, 1);
    const labelWidth = 230;
    const width = 1000;
    const plot = width - labelWidth - 20;
    const rowHeight = 30;
    const top = 30;
    const decisions = view.events.filter((e) => e.event_type === "DecisionTaskCompleted");
    // A failed decision task is usually the code failing on replay (non-determinism, an
    // exception in the workflow): red on the decisions row, its cause in the tooltip.
    const failedDecisions = view.events.filter((e) => e.event_type === "DecisionTaskFailed");
    const rows = 2 + items.length; // the run itself, decision tasks, then the items
    const height = top + rows * rowHeight + 10;
    const x = (t) => labelWidth + (Math.min(Math.max(t, start), runEnd) - start) / span * plot;

    const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "timeline", id: "timeline",
                           role: "img", "aria-label": "Timeline of the run", width: "100%" });
    const defs = s("defs", {},
      s("pattern", { id: "pending-stripes", width: 8, height: 8, patternUnits: "userSpaceOnUse",
                     patternTransform: "rotate(45)" },
        s("rect", { width: 8, height: 8, class: "stripe-bg" }),
        s("rect", { width: 3, height: 8, class: "stripe" })));
    svg.append(defs);

    // Axis and grid.
    const step = niceStep(span, 8);
    const axis = s("g", { class: "axis" });
    for (let offset = 0; offset <= span + 1e-9; offset += step) {
      const px = labelWidth + offset / span * plot;
      axis.append(
        s("line", { x1: px, x2: px, y1: top - 6, y2: height - 6, class: "grid" }),
        s("text", { x: px, y: top - 12, class: "tick", "text-anchor": "middle" }, fmtOffset(offset, step)));
    }
    axis.append(s("text", { x: 12, y: top - 12, class: "tick strong-tick" }, fmtTime(start).slice(11, 19) + " local"));
    svg.append(axis);

    function rowGroup(index, label, sub, kind) {
      const y = top + index * rowHeight;
      const group = s("g", { class: `row row-${kind}`, "data-kind": kind });
      if (index % 2 === 0) {
        group.append(s("rect", { x: 0, y, width, height: rowHeight, class: "row-bg" }));
      }
      group.append(
        s("text", { x: 12, y: y + 13, class: "row-label" }, label.length > 28 ? `${label.slice(0, 27)}…` : label),
        s("text", { x: 12, y: y + 25, class: "row-sub" }, sub || ""));
      return { group, y };
    }

    // The run.
    {
      const { group, y } = rowGroup(0, d.workflow_type, "workflow run", "run");
      const cls = d.status === "OPEN" ? "bar bar-run pending" : `bar bar-run outcome-${String(d.status).toLowerCase()}`;
      group.append(s("rect", { x: x(start), y: y + 7, width: Math.max(x(runEnd) - x(start), 3), height: 16,
                               rx: 4, class: cls },
        s("title", {}, `${d.workflow_type}: ${d.status.toLowerCase()} · ${fmtDuration(runEnd - start)}`)));
      group.append(s("text", { x: x(start) + 8, y: y + 19, class: "run-text" },
        `${d.status.toLowerCase().replaceAll("_", " ")} · ${fmtDuration(runEnd - start)}${d.status === "OPEN" ? " so far" : ""}`));
      svg.append(group);
    }
    // Decision tasks: each completed one is a point a reset can go back to.
    {
      const { group, y } = rowGroup(1, "decision tasks", `${decisions.length} completed` +
        (failedDecisions.length ? ` · ${failedDecisions.length} failed` : ""), "decisions");
      for (const event of decisions) {
        const tick = s("rect", { x: x(Number(event.timestamp)) - 1.5, y: y + 8, width: 3, height: 14,
                                 rx: 1, class: "tick-decision", "data-event-id": event.event_id },
          s("title", {}, `DecisionTaskCompleted #${event.event_id} at ${fmtTime(event.timestamp)} (click: its row, where a reset can start)`));
        tick.addEventListener("click", () => focusEvent(view, event.event_id));
        group.append(tick);
      }
      for (const event of failedDecisions) {
        const a = event.attributes || {};
        const tick = s("rect", { x: x(Number(event.timestamp)) - 2, y: y + 6, width: 4, height: 18,
                                 rx: 1, class: "tick-decision failed", "data-event-id": event.event_id },
          s("title", {}, `DecisionTaskFailed #${event.event_id}: ${a.cause || ""}\n${String(a.details || "").slice(0, 300)}`));
        tick.addEventListener("click", () => focusEvent(view, event.event_id));
        group.append(tick);
      }
      svg.append(group);
    }

    items.forEach((item, index) => {
      const sub = item.kind === "activity" && item.attempt > 0
        ? `${item.sub} · attempt ${item.attempt + 1}` : item.sub;
      const { group, y } = rowGroup(index + 2, item.label, sub, item.kind);
      group.classList.add("clickable");
      group.addEventListener("click", () => focusEvent(view, item.events[0]));
      const outcome = item.pending ? "pending" : `outcome-${item.outcome || "completed"}`;
      const title = [
        `${item.label} (${item.sub})`,
        item.pending ? "pending" : (item.outcome || ""),
        item.point ? fmtTime(item.start) : `${fmtTime(item.start)} → ${fmtTime(item.end)} (${fmtDuration(item.end - item.start)})`,
        item.attempt ? `attempt ${item.attempt + 1}${item.lastFailure ? `, previous failure: ${item.lastFailure}` : ""}` : "",
        item.reason ? `reason: ${item.reason}` : "",
        `events ${item.events.join(", ")}`,
      ].filter(Boolean).join("\n");
      if (item.point) {
        const cx = x(item.start);
        const cy = y + 15;
        group.append(s("path", { d: `M ${cx} ${cy - 7} L ${cx + 7} ${cy} L ${cx} ${cy + 7} L ${cx - 7} ${cy} Z`,
                                 class: `point point-${item.kind}` }, s("title", {}, title)));
      } else {
        const x0 = x(item.start);
        const x1 = Math.max(x(item.end), x0 + 4);
        if (item.kind === "activity" && item.started && item.started > item.start + span / 400) {
          // Waiting to start (queued, or backing off between attempts), then running.
          const xs = x(item.started);
          group.append(s("rect", { x: x0, y: y + 14, width: Math.max(xs - x0, 2), height: 5, rx: 2.5,
                                   class: item.attempt > 0 ? "bar-wait retry" : "bar-wait" },
            s("title", {}, item.attempt > 0 ? `${item.attempt} earlier attempt(s) and their backoff${item.lastFailure ? `; last failure: ${item.lastFailure}` : ""}` : "scheduled, waiting for a worker")));
          // The earlier attempts, said over their stretch when it is wide enough.
          const attempts = `${item.attempt} failed attempt${item.attempt > 1 ? "s" : ""}`;
          const retryText = [item.lastFailure ? `${attempts} · ${item.lastFailure}` : attempts, attempts]
            .find((text) => item.attempt > 0 && xs - x0 > text.length * 5 + 6);
          if (retryText) {
            group.append(s("text", { x: x0 + 2, y: y + 10, class: "retry-text" }, retryText));
          }
          group.append(s("rect", { x: xs, y: y + 7, width: Math.max(x1 - xs, 4), height: 16, rx: 4,
                                   class: `bar bar-${item.kind} ${outcome}` }, s("title", {}, title)));
        } else {
          group.append(s("rect", { x: x0, y: y + 7, width: x1 - x0, height: 16, rx: 4,
                                   class: `bar bar-${item.kind} ${outcome}` }, s("title", {}, title)));
        }
        if (item.heartbeat) {
          group.append(s("circle", { cx: x(item.heartbeat), cy: y + 15, r: 3, class: "heartbeat" },
            s("title", {}, `last heartbeat ${fmtTime(item.heartbeat)}`)));
        }
        const durationText = item.pending ? "running" : fmtDuration(item.end - item.start);
        const text = item.outcome && item.outcome !== "completed" && item.outcome !== "fired"
          ? `${durationText} · ${item.outcome.replace("_", " ")}` : durationText;
        // Beside the bar, on its right when there is room, else on its left.
        const right = x1 + 6 + text.length * 6.5 < width;
        group.append(s("text", { x: right ? x1 + 6 : x0 - 6, y: y + 19,
                                 "text-anchor": right ? "start" : "end",
                                 class: `bar-text ${item.outcome === "failed" || item.outcome === "timed_out" ? "bad" : ""}` },
          text));
      }
      svg.append(group);
    });

    const legend = h("div", { class: "legend" },
      [["activity", "activity"], ["timer", "timer"], ["child", "child workflow"],
       ["signal", "signal"], ["marker", "marker"], ["failed", "failed / timed out"],
       ["pending", "pending"]].map(([kind, label]) =>
        h("span", { class: "legend-item" }, h("span", { class: `swatch swatch-${kind}` }), label)));
    const more = allItems.length > items.length
      ? h("button", { class: "button small", type: "button", id: "timeline-all",
                      text: `Show all ${allItems.length} rows (${allItems.length - items.length} more)`,
                      onclick: () => { view.timelineAll = true; drawRun(view, view.refresh, true); } })
      : null;
    return h("div", { class: "timeline-wrap" }, svg, more, legend);
  }

  function focusEvent(view, eventId) {
    if (eventId > HISTORY_ROWS) view.historyAll = true;
    view.selected = eventId;
    view.expanded.add(eventId);
    drawHistory(view);
    const row = document.querySelector(`tr[data-event-id="${eventId}"]`);
    if (row) row.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  // ---- history table ---------------------------------------------------------------------

  const SUMMARY_KEYS = ["activity_type", "activity_id", "timer_id", "signal_name", "marker_name",
    "workflow_type", "workflow_id", "reason", "timeout_type", "cause", "attempt",
    "last_failure_reason",
    "scheduled_event_id", "started_event_id", "initiated_event_id",
    "start_to_fire_timeout_seconds", "new_execution_run_id", "task_list"];

  function category(type) {
    if (type.startsWith("Decision")) return "decision";
    if (type.startsWith("Activity")) return "activity";
    if (type.startsWith("Timer")) return "timer";
    if (type.includes("Child")) return "child";
    if (type.includes("Signal")) return "signal";
    if (type === "MarkerRecorded") return "marker";
    if (/Failed|TimedOut|Terminated/.test(type)) return "bad";
    return "workflow";
  }

  function summary(event) {
    const a = event.attributes || {};
    const parts = [];
    for (const key of SUMMARY_KEYS) {
      const value = a[key];
      if (value === null || value === undefined || value === "" || value === 0 && key === "attempt") continue;
      if (key === "task_list" && event.event_type !== "WorkflowExecutionStarted") continue;
      parts.push(h("span", { class: "kv" }, h("span", { class: "k", text: key }),
        h("span", { class: "v", text: typeof value === "object" ? JSON.stringify(value) : String(value) })));
    }
    for (const key of ["input", "result", "details"]) {
      if (a[key]) {
        const text = a[key].length > 80 ? `${a[key].slice(0, 79)}…` : a[key];
        parts.push(h("span", { class: "kv" }, h("span", { class: "k", text: key }),
          h("span", { class: "v mono", text })));
      }
    }
    if (a.workflow_execution && a.workflow_execution.run_id) {
      parts.push(runLink(a.workflow_execution.workflow_id, a.workflow_execution.run_id, "open child run →"));
    }
    return parts;
  }

  function drawHistory(view) {
    const box = document.getElementById("history-table");
    if (!box) return;
    const start = view.events.length ? Number(view.events[0].timestamp) : 0;
    const body = h("tbody", {});
    const shown = view.historyAll ? view.events : view.events.slice(0, HISTORY_ROWS);
    for (const event of shown) {
      const expanded = view.expanded.has(event.event_id);
      const type = event.event_type;
      const toggle = () => {
        if (view.expanded.has(event.event_id)) view.expanded.delete(event.event_id);
        else view.expanded.add(event.event_id);
        drawHistory(view);
      };
      body.append(h("tr", {
        class: `event-row ${expanded ? "expanded" : ""} ${view.selected === event.event_id ? "selected" : ""}`,
        dataset: { eventId: event.event_id, eventType: type },
        onclick: (e) => { if (!e.target.closest("a,button")) toggle(); },
      },
        h("td", { class: "num nowrap" }, h("span", { class: "caret", text: expanded ? "▾" : "▸" }), String(event.event_id)),
        h("td", { class: "nowrap" }, timeNode(event.timestamp)),
        h("td", { class: "nowrap muted num", text: `+${fmtDuration(Number(event.timestamp) - start)}` }),
        h("td", { class: "nowrap" }, h("span", { class: `etype cat-${category(type)}`, text: type })),
        h("td", {}, h("div", { class: "summary" }, summary(event),
          type === "DecisionTaskCompleted"
            ? h("button", { class: "button tiny", type: "button", text: "Reset here",
                            dataset: { resetEvent: event.event_id },
                            onclick: () => resetDialog(view, event.event_id) }) : null))));
      if (expanded) {
        body.append(h("tr", { class: "attrs-row", dataset: { attributesOf: event.event_id } },
          h("td", { colspan: 5 }, h("pre", { class: "json" }, pretty(readableAttributes(event.attributes))))));
      }
    }
    box.replaceChildren();
    append(box, [h("table", { class: "history" },
      h("thead", {}, h("tr", {}, ["ID", "Time", "Elapsed", "Event", "Attributes"].map((t) => h("th", { text: t })))),
      body),
      shown.length < view.events.length
        ? h("button", { class: "button small", type: "button", id: "history-all",
                        text: `Show all ${view.events.length} events (${view.events.length - shown.length} more)`,
                        onclick: () => { view.historyAll = true; drawHistory(view); } })
        : null]);
  }

  // ---- pending activities ----------------------------------------------------------------

  function pendingTable(pending) {
    return h("table", { class: "pending" },
      h("thead", {}, h("tr", {}, ["Activity", "State", "Attempt", "Scheduled", "Started",
        "Last heartbeat", "Heartbeat details", "Last failure", "Timeouts"].map((t) => h("th", { text: t })))),
      h("tbody", {}, pending.map((a) => h("tr", { dataset: { activityId: a.activity_id } },
        h("td", {}, h("div", { class: "strong", text: a.activity_type }),
          h("div", { class: "muted small mono", text: `id ${a.activity_id} · ${a.task_list}` })),
        h("td", {}, h("span", { class: `pill ${a.state === "STARTED" ? "status-open" : "status-scheduled"}`,
                               text: a.state.toLowerCase() + (a.cancel_requested ? " · cancel requested" : "") })),
        h("td", { class: "num", text: String((a.attempt || 0) + 1) }),
        h("td", { class: "nowrap" }, timeNode(a.scheduled_time)),
        h("td", { class: "nowrap" }, timeNode(a.started_time)),
        h("td", { class: "nowrap" }, timeNode(a.last_heartbeat_time)),
        h("td", {}, a.heartbeat_details ? payloadNode(a.heartbeat_details) : h("span", { class: "muted", text: "—" })),
        h("td", { class: a.last_failure_reason ? "error-text" : "muted", text: a.last_failure_reason || "—" }),
        h("td", { class: "small" },
          h("div", { text: `schedule→start ${fmtSeconds(a.schedule_to_start_timeout_seconds)}` }),
          h("div", { text: `start→close ${fmtSeconds(a.start_to_close_timeout_seconds)}` }),
          h("div", { text: `schedule→close ${fmtSeconds(a.schedule_to_close_timeout_seconds)}` }),
          h("div", { text: `heartbeat ${fmtSeconds(a.heartbeat_timeout_seconds)}` }))))));
  }

  // ---- actions ---------------------------------------------------------------------------

  function signalDialog(view, refresh) {
    const d = view.describe;
    openDialog({
      id: "signal-form", title: "Send a signal",
      text: h("span", {}, "To run ", h("code", { text: d.run_id }), " of ", h("code", { text: d.workflow_id }), "."),
      fields: [
        { name: "signal_name", label: "Signal name", required: true, placeholder: "approve" },
        { name: "args", label: "Arguments", multiline: true, placeholder: '"ann"',
          hint: "JSON values separated by spaces or new lines; empty for none." },
      ],
      confirm: "Send signal",
      run: async (values) => {
        if (!values.signal_name.trim()) throw new Error("a signal name is required");
        await api("POST", workflowPath(d.workflow_id, "/signal"), {
          body: { run_id: d.run_id, signal_name: values.signal_name.trim(),
                  input: encodeArgs(values.args), request_id: newRequestId() },
        });
        toast(`Signal ${values.signal_name.trim()} sent`);
        refresh(true);
      },
    });
  }

  function queryDialog(view) {
    const d = view.describe;
    const datalist = h("datalist", { id: "query-types" });
    const { inputs } = openDialog({
      id: "query-form", title: "Run a query",
      text: "A worker replays the run and answers; nothing is written to the history.",
      fields: [
        { name: "query_type", label: "Query", required: true, list: "query-types",
          placeholder: "status", datalist },
        { name: "args", label: "Arguments", multiline: true, hint: "JSON values; empty for none." },
      ],
      confirm: "Run query",
      run: async (values) => {
        const answer = await api("POST", workflowPath(d.workflow_id, "/query"), {
          body: { run_id: d.run_id, query_type: values.query_type.trim(),
                  query_args: encodeArgs(values.args), wait_seconds: 20 },
        });
        return h("div", { class: "query-answer", id: "query-answer" }, h("h3", { text: "Answer" }),
          payloadNode(answer.result, "null"));
      },
    });
    // The registered query names, when a worker answers quickly.
    api("POST", workflowPath(d.workflow_id, "/query"), {
      body: { run_id: d.run_id, query_type: "__query_types", wait_seconds: 5 },
    }).then((answer) => {
      const names = splitPayload(answer.result)[0] || [];
      datalist.replaceChildren(...names.concat(["__stack_trace"]).map((n) => h("option", { value: n })));
      if (!inputs.query_type.value && names.length) inputs.query_type.placeholder = names[0];
    }, () => {});
  }

  // Cancel and terminate: one reason field, a confirmation, one POST to the run.
  function runActionDialog(view, refresh, { id, title, text, field, value, confirm, action, done }) {
    const d = view.describe;
    openDialog({
      id, title, text, confirm, danger: true,
      fields: [{ name: field, label: field === "cause" ? "Cause" : "Reason", value, required: true }],
      run: async (values) => {
        await api("POST", workflowPath(d.workflow_id, `/${action}`), {
          body: { run_id: d.run_id, [field]: values[field], request_id: newRequestId() },
        });
        toast(done);
        refresh(true);
      },
    });
  }

  function cancelDialog(view, refresh) {
    runActionDialog(view, refresh, {
      id: "cancel-form", title: "Request cancellation", action: "cancel", field: "cause",
      text: "The workflow code sees the request (its awaits raise CancelledError) and decides how to finish.",
      value: "cancelled from the web UI", confirm: "Request cancellation",
      done: "Cancellation requested",
    });
  }

  function terminateDialog(view, refresh) {
    runActionDialog(view, refresh, {
      id: "terminate-form", title: "Terminate this run?", action: "terminate", field: "reason",
      text: "The run closes at once as TERMINATED; its code gets no chance to clean up. This cannot be undone.",
      value: "terminated from the web UI", confirm: "Terminate", done: "Run terminated",
    });
  }

  function resetDialog(view, eventId) {
    const d = view.describe;
    const points = view.events.filter((e) => e.event_type === "DecisionTaskCompleted");
    if (!points.length) {
      showError({ code: "Reset", message: "this run has no completed decision task to reset to" });
      return;
    }
    const chosen = eventId || points[points.length - 1].event_id;
    openDialog({
      id: "reset-form", title: "Reset the run",
      text: "A new run starts from the history up to the chosen DecisionTaskCompleted and decides again from there; later signals are applied again. An open run is terminated.",
      fields: [
        { name: "event_id", label: "Reset to", value: chosen,
          options: points.map((e) => [e.event_id, `#${e.event_id} DecisionTaskCompleted · ${fmtTime(e.timestamp)}`]) },
        { name: "reason", label: "Reason", value: "reset from the web UI" },
      ],
      confirm: "Reset", danger: true,
      run: async (values) => {
        const answer = await api("POST", workflowPath(d.workflow_id, "/reset"), {
          body: { run_id: d.run_id, decision_finish_event_id: Number(values.event_id),
                  reason: values.reason, request_id: newRequestId() },
        });
        toast("Reset: new run started");
        document.getElementById("dialog").close();
        location.hash = runHref(d.workflow_id, answer.run_id);
      },
    });
  }

  // A download of `text` as the file `name`, made in the page (no second request).
  function saveJson(text, name) {
    const blob = new Blob([text], { type: "application/json" });
    const link = h("a", { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  async function downloadHistory(view) {
    try {
      const events = await loadHistory(view.workflowId, view.describe.run_id);
      saveJson(historyJson(events), `${view.workflowId}.${view.describe.run_id}.history.json`);
    } catch (error) {
      showError(error);
    }
  }

  // ---- API reference (#/api) -------------------------------------------------------------
  // The API's own OpenAPI document (GET /api/v1/openapi.json), drawn as a browsable page:
  // routes grouped by tag (or by path prefix when the document has none), each expandable to
  // its parameters, request body, responses and a curl example. $refs are resolved here, so
  // every body shows as a table of its fields.

  const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

  function resolvePointer(doc, ref) {
    if (typeof ref !== "string" || !ref.startsWith("#/")) return null;
    let node = doc;
    for (const raw of ref.slice(2).split("/")) {
      const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
      if (node === null || typeof node !== "object" || !(key in node)) return null;
      node = node[key];
    }
    return node;
  }

  // The document's prose comes from docstrings: ``name`` is code there.
  function prose(text) {
    return String(text || "").split(/``([^`]+)``/).map((part, i) => (i % 2 ? h("code", { text: part }) : part));
  }

  function refName(ref) { return String(ref).split("/").pop(); }

  // A schema's $ref followed (and the name it was reached by), guarding against a loop.
  function deref(doc, schema) {
    let name = null;
    const seen = new Set();
    while (schema && schema.$ref && !seen.has(schema.$ref)) {
      seen.add(schema.$ref);
      name = refName(schema.$ref);
      schema = resolvePointer(doc, schema.$ref) || {};
    }
    return { schema: schema || {}, name };
  }

  // anyOf/oneOf with a null member: the other member, and that null is allowed.
  function unwrapNullable(schema) {
    const members = schema.anyOf || schema.oneOf;
    if (Array.isArray(members)) {
      const rest = members.filter((m) => m.type !== "null");
      if (rest.length === 1 && rest.length < members.length) return { schema: rest[0], nullable: true };
    }
    if (Array.isArray(schema.type) && schema.type.includes("null")) {
      const types = schema.type.filter((t) => t !== "null");
      return { schema: { ...schema, type: types.length === 1 ? types[0] : types }, nullable: true };
    }
    return { schema, nullable: false };
  }

  function typeText(doc, schema) {
    if (!schema || typeof schema !== "object") return "any";
    if (schema.$ref) {
      const target = resolvePointer(doc, schema.$ref) || {};
      return target.title || refName(schema.$ref);
    }
    const { schema: inner, nullable } = unwrapNullable(schema);
    if (inner !== schema) return typeText(doc, inner) + (nullable ? " | null" : "");
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
    for (const key of ["anyOf", "oneOf"]) {
      if (Array.isArray(schema[key])) return schema[key].map((m) => typeText(doc, m)).join(" | ");
    }
    if (Array.isArray(schema.allOf)) return schema.allOf.map((m) => typeText(doc, m)).join(" & ");
    if (schema.type === "array") return `array of ${typeText(doc, schema.items)}`;
    if (Array.isArray(schema.type)) return schema.type.join(" | ");
    if (schema.type) return schema.format ? `${schema.type} (${schema.format})` : schema.type;
    return "any";
  }

  // What a field's schema says beyond its type: description, limits, default, enum.
  function schemaNotes(schema) {
    const { schema: inner } = unwrapNullable(schema);
    const notes = [];
    for (const s of inner === schema ? [schema] : [schema, inner]) {
      if (s.description) notes.push(s.description);
      if (s["x-maxBytes"] !== undefined) notes.push(`at most ${s["x-maxBytes"]} bytes (UTF-8)`);
      if (s.maxLength !== undefined) notes.push(`at most ${s.maxLength} characters`);
      if (s.minimum !== undefined) notes.push(`≥ ${s.minimum}`);
      if (s.maximum !== undefined) notes.push(`≤ ${s.maximum}`);
    }
    if (schema.default !== undefined && schema.default !== null) {
      notes.push(`default ${JSON.stringify(schema.default)}`);
    }
    return notes;
  }

  // The object schema a field leads to (directly, through a $ref, or as an array's items),
  // when it has fields of its own to show.
  function nestedObject(doc, schema) {
    let { schema: inner } = unwrapNullable(schema);
    if (inner.type === "array" && inner.items) inner = inner.items;
    const { schema: target, name } = deref(doc, inner);
    return target.properties ? { schema: target, name } : null;
  }

  // A schema as a table of its fields (name, type, required, description), nested objects
  // under their field, each named schema drawn once per branch.
  function schemaNode(doc, schema, seen) {
    const { schema: target, name } = deref(doc, schema || {});
    const chain = new Set(seen || []);
    if (name) chain.add(name);
    if (!target.properties) {
      const notes = schemaNotes(target);
      return h("p", { class: "schema-plain" },
        h("code", { text: typeText(doc, schema) }), notes.length ? ` · ${notes.join(" · ")}` : null);
    }
    const required = new Set(target.required || []);
    const body = h("tbody", {});
    for (const [field, fieldSchema] of Object.entries(target.properties)) {
      const nested = nestedObject(doc, fieldSchema);
      body.append(h("tr", { class: "field-row", dataset: { field } },
        h("td", { class: "mono strong nowrap", text: field }),
        h("td", { class: "mono small", text: typeText(doc, fieldSchema) }),
        h("td", {}, required.has(field) ? h("span", { class: "pill required", text: "required" })
          : h("span", { class: "muted small", text: "optional" })),
        h("td", { class: "small" }, schemaNotes(fieldSchema).join(" · "))));
      if (nested && !chain.has(nested.name)) {
        body.append(h("tr", { class: "nested-row" }, h("td", { colspan: 4 },
          h("details", { class: "nested" },
            h("summary", { class: "small" }, `${field}: `, h("code", { text: nested.name || "object" })),
            schemaNode(doc, nested.schema, new Set([...chain, nested.name]))))));
      }
    }
    return h("div", { class: "schema" },
      name ? h("div", { class: "schema-name mono small muted", text: name }) : null,
      target.description ? h("p", { class: "small", text: target.description }) : null,
      h("table", { class: "fields" },
        h("thead", {}, h("tr", {}, ["Field", "Type", "Required", "Description"].map((t) => h("th", { text: t })))),
        body));
  }

  function jsonSchemaOf(content) {
    if (!content) return null;
    const media = content["application/json"] || Object.values(content)[0];
    return media && media.schema ? media.schema : null;
  }

  // A placeholder value of a schema's type, for the curl example's body.
  function exampleValue(doc, field, schema) {
    const { schema: inner } = unwrapNullable(schema || {});
    const { schema: target } = deref(doc, inner);
    if (target.example !== undefined) return target.example;
    if (Array.isArray(target.enum) && target.enum.length) return target.enum[0];
    switch (Array.isArray(target.type) ? target.type[0] : target.type) {
      case "integer": case "number": return 0;
      case "boolean": return false;
      case "array": return [];
      case "object": return {};
      default: return `<${field}>`;
    }
  }

  function exampleBody(doc, schema) {
    const { schema: target } = deref(doc, schema || {});
    const body = {};
    for (const field of target.required || []) {
      body[field] = exampleValue(doc, field, (target.properties || {})[field]);
    }
    const optional = Object.keys(target.properties || {}).filter((f) => !(target.required || []).includes(f));
    return { body, optional };
  }

  function shellQuote(text) { return `'${String(text).replaceAll("'", "'\\''")}'`; }

  // The region of an API Gateway URL (https://<id>.execute-api.<region>.amazonaws.com/...).
  function gatewayRegion(baseUrl) {
    const match = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(baseUrl || "");
    return match ? match[1] : null;
  }

  function curlExample(doc, baseUrl, method, path, operation) {
    const url = baseUrl.replace(/\/$/, "") + path.replace(/\{(\w+)\}/g,
      (_, name) => (name === "domain" ? enc(domain()) : `<${name}>`));
    const lines = [`curl -X ${method.toUpperCase()} ${shellQuote(url)}`];
    const region = gatewayRegion(baseUrl);
    if (region) {
      lines.push(`  --aws-sigv4 ${shellQuote(`aws:amz:${region}:execute-api`)}`,
        '  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"',
        '  -H "x-amz-security-token: $AWS_SESSION_TOKEN"');
    }
    let optional = [];
    const schema = operation.requestBody ? jsonSchemaOf(operation.requestBody.content) : null;
    if (schema) {
      const example = exampleBody(doc, schema);
      optional = example.optional;
      lines.push("  -H 'Content-Type: application/json'", `  -d ${shellQuote(JSON.stringify(example.body))}`);
    }
    return { text: lines.join(" \\\n"), optional, signed: Boolean(region) };
  }

  // Tags when the document has them; else the path up to its second fixed segment after the
  // common prefix (/api/v1/domains/{domain}/workflows, /api/v1/tasks/activity, ...).
  function groupOf(path, operation, prefix) {
    if (operation.tags && operation.tags.length) return operation.tags[0];
    const rest = path.slice(prefix.length).split("/").filter(Boolean);
    const kept = [];
    let fixed = 0;
    for (const segment of rest) {
      kept.push(segment);
      if (!segment.startsWith("{") && ++fixed === 2) break;
    }
    while (kept.length && kept[kept.length - 1].startsWith("{")) kept.pop();
    return prefix + kept.join("/");
  }

  function commonPrefix(paths) {
    if (!paths.length) return "/";
    let parts = paths[0].split("/").slice(0, -1); // a directory: not the first path's last segment
    for (const path of paths.slice(1)) {
      const other = path.split("/");
      let i = 0;
      while (i < parts.length && i < other.length && parts[i] === other[i]) i++;
      parts = parts.slice(0, i);
    }
    return `${parts.join("/")}/`;
  }

  function operationId(method, path) { return `${method}-${path}`.replace(/[^A-Za-z0-9_-]+/g, "-"); }

  function operationNode(doc, baseUrl, method, path, operation, open) {
    const params = [...(doc.paths[path].parameters || []), ...(operation.parameters || [])]
      .map((p) => (p.$ref ? deref(doc, p).schema : p));
    const bodySchema = operation.requestBody ? jsonSchemaOf(deref(doc, operation.requestBody).schema.content) : null;
    const curl = curlExample(doc, baseUrl, method, path, operation);
    const responses = Object.entries(operation.responses || {});
    const details = h("details", {
      class: "op", id: operationId(method, path), open,
      dataset: { method: method.toUpperCase(), path, operationId: operation.operationId || "" },
    },
      h("summary", { class: "op-summary" },
        h("span", { class: `method method-${method}`, text: method.toUpperCase() }),
        h("span", { class: "op-path mono", text: path }),
        h("span", { class: "op-text muted" }, prose(operation.summary))),
      h("div", { class: "op-body" },
        operation.description ? h("p", {}, prose(operation.description)) : null,
        operation.operationId ? h("p", { class: "small muted" }, "operationId ", h("code", { text: operation.operationId })) : null,
        h("h3", { text: "Parameters" }),
        params.length
          ? h("table", { class: "fields params" },
            h("thead", {}, h("tr", {}, ["Name", "In", "Type", "Required", "Description"].map((t) => h("th", { text: t })))),
            h("tbody", {}, params.map((p) => h("tr", { class: "param-row", dataset: { param: p.name } },
              h("td", { class: "mono strong", text: p.name }),
              h("td", { class: "small", text: p.in }),
              h("td", { class: "mono small", text: typeText(doc, p.schema) }),
              h("td", {}, p.required ? h("span", { class: "pill required", text: "required" })
                : h("span", { class: "muted small", text: "optional" })),
              h("td", { class: "small", text: [p.description, ...schemaNotes(p.schema || {})].filter(Boolean).join(" · ") })))))
          : h("p", { class: "muted small", text: "none" }),
        h("h3", { text: "Request body" }),
        bodySchema
          ? h("div", { class: "request-body" },
            operation.requestBody.description ? h("p", { class: "small muted", text: `${operation.requestBody.required ? "Required. " : ""}${operation.requestBody.description}` }) : null,
            schemaNode(doc, bodySchema))
          : h("p", { class: "muted small", text: "none" }),
        h("h3", { text: "Responses" }),
        h("table", { class: "fields responses" },
          h("thead", {}, h("tr", {}, ["Status", "Description", "Body"].map((t) => h("th", { text: t })))),
          h("tbody", {}, responses.map(([status, answer]) => {
            const resolved = deref(doc, answer).schema;
            const schema = jsonSchemaOf(resolved.content);
            return h("tr", { class: "response-row", dataset: { status } },
              h("td", { class: "mono strong" }, h("span", { class: `status-code code-${status[0]}xx`, text: status })),
              h("td", { class: "small", text: resolved.description || "" }),
              h("td", {}, schema ? (schema.$ref ? h("details", { class: "nested" },
                h("summary", {}, h("code", { text: typeText(doc, schema) })), schemaNode(doc, schema))
                : h("code", { text: typeText(doc, schema) })) : h("span", { class: "muted", text: "—" })));
          }))),
        h("div", { class: "curl-head" }, h("h3", { text: "Example" }), copyButton(curl.text)),
        h("pre", { class: "json curl", text: curl.text }),
        curl.optional.length ? h("p", { class: "small muted" }, "Optional fields: ",
          curl.optional.map((f, i) => [i ? ", " : "", h("code", { text: f })])) : null,
        curl.signed ? null : h("p", { class: "small muted" },
          "A deployed stack (IAM authorization) refuses unsigned requests: sign them with SigV4, e.g. ",
          h("code", { text: "--aws-sigv4 'aws:amz:<region>:execute-api' --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\"" }),
          " (and ", h("code", { text: "-H \"x-amz-security-token: $AWS_SESSION_TOKEN\"" }),
          " with temporary credentials), or use the signed ", h("code", { text: "cadenza.Client" }), ".")));
    return details;
  }

  async function uiConfig() {
    try {
      const response = await fetch("/ui-config.json", { headers: { Accept: "application/json" } });
      if (response.ok) return await response.json();
    } catch (error) { /* an older server: the page's own origin */ }
    return {};
  }

  async function renderApi(openOperation) {
    const token = pageToken;
    const app = document.getElementById("app");
    setCrumbs(h("span", { text: "API" }));
    app.replaceChildren(h("p", { class: "muted", text: "Loading the OpenAPI document…" }));
    let doc;
    let config;
    try {
      [doc, config] = await Promise.all([api("GET", "/openapi.json"), uiConfig()]);
    } catch (error) {
      if (token !== pageToken) return;
      showError(error);
      app.replaceChildren(h("div", { class: "card empty-card" },
        h("h2", { text: "Cannot load the API's OpenAPI document" }), h("p", { text: error.message })));
      return;
    }
    if (token !== pageToken) return;
    const baseUrl = config.api_base_url || location.origin;
    const paths = Object.keys(doc.paths || {});
    const prefix = commonPrefix(paths);
    const groups = new Map();
    let count = 0;
    for (const path of paths) {
      for (const method of METHODS) {
        const operation = doc.paths[path][method];
        if (!operation) continue;
        const group = groupOf(path, operation, prefix);
        if (!groups.has(group)) groups.set(group, []);
        groups.get(group).push([method, path, operation]);
        count += 1;
      }
    }
    // A file of the document as read (behind the proxy a plain link would lack the UI header).
    const download = () => saveJson(JSON.stringify(doc, null, 2) + "\n", "openapi.json");
    const info = doc.info || {};
    app.replaceChildren();
    append(app, [
      h("div", { class: "page-head" },
        h("h1", { text: info.title || "HTTP API" }),
        h("div", { class: "head-side" },
          h("span", { class: "muted", id: "api-count", text: `${count} routes · OpenAPI ${doc.openapi || ""} · ${info.version || ""}` }),
          h("button", { class: "button small", type: "button", text: "Expand all",
                        onclick: () => app.querySelectorAll("details.op").forEach((d) => { d.open = true; }) }),
          h("button", { class: "button small", type: "button", text: "Collapse all",
                        onclick: () => app.querySelectorAll("details.op").forEach((d) => { d.open = false; }) }),
          h("button", { class: "button small", type: "button", id: "api-download", text: "Download openapi.json", onclick: download }))),
      h("div", { class: "card api-intro" },
        info.description ? h("p", {}, prose(info.description)) : null,
        h("p", { class: "small muted" }, "Base URL ", h("code", { id: "api-base", text: baseUrl }),
          ". This page reads ", h("code", { text: "GET /api/v1/openapi.json" }),
          "; generate a client from that document to call the API from any language.")),
      [...groups.entries()].map(([group, operations]) => h("section", { class: "api-group", dataset: { group } },
        h("h2", { class: "mono", text: group }),
        h("div", { class: "card table-card ops" },
          operations.map(([method, path, operation]) => operationNode(doc, baseUrl, method, path, operation,
            Boolean(openOperation) && (openOperation === operation.operationId || openOperation === operationId(method, path)))))))]);
    const opened = openOperation ? app.querySelector("details.op[open]") : null;
    if (opened) opened.scrollIntoView({ block: "start" });
  }

  // ---- start -----------------------------------------------------------------------------

  const domainInput = document.getElementById("domain");
  domainInput.value = localStorage.getItem("cadenza.domain") || "default";
  domainInput.addEventListener("change", () => {
    localStorage.setItem("cadenza.domain", domain());
    location.hash = "#/";
    route();
  });
  window.addEventListener("hashchange", route);
  // For tests and scripts: the history download's exact text, the payload reader.
  window.cadenzaUi = {
    historyJson: async (workflowId, runId) => historyJson(await loadHistory(workflowId, runId)),
    splitPayload,
  };
  route();
})();
