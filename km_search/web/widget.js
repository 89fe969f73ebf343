/*
 * km-search widget: a search box for any intranet page.
 *
 *   <script src="https://km.example/widget.js" defer></script>
 *   <km-search api="https://km.example" project="billing" results="5"
 *              placeholder="Search billing docs" target="_blank"></km-search>
 *
 * Attributes: api (default: the origin that served this script), project / type / author (default
 * filters), results (how many, 1-20, default 5), placeholder, target (_blank: sources open in a new
 * tab, the default; _self: in this page), debounce (ms, default 250). Theme with the CSS custom
 * properties --km-accent, --km-bg, --km-fg, --km-muted, --km-border, --km-font on the element.
 *
 * A classic script (not a module) so that any origin may load it; the API answers only the origins
 * in KM_CORS_ORIGINS. It also exposes window.KmSearch, the small client the search page shares.
 */
(() => {
  "use strict";
  if (globalThis.KmSearch) return; // the script was included twice

  const script = document.currentScript;
  const SCRIPT_ORIGIN = (() => {
    try {
      return new URL(script.src).origin;
    } catch {
      return location.origin;
    }
  })();
  const FILTERS = ["type", "project", "author"];

  class SearchError extends Error {
    constructor(message, { status = 0, network = false } = {}) {
      super(message);
      this.name = "SearchError";
      this.status = status;
      this.network = network;
    }
  }

  /**
   * The JSON API. search() is /search (hits, and with group "document" one entry per document);
   * ask() is /ask (the answer and its hits), null when the server has no /ask. Callers start both
   * at once and show the results when search() resolves, the answer when ask() does: an answer
   * takes longer than a search.
   */
  class Client {
    constructor(api, key = null) {
      this.api = String(api || SCRIPT_ORIGIN).replace(/\/+$/, "");
      this.key = key || null; // an API key, sent as a Bearer token (KM_AUTH=keys)
      this.onUnauthorized = null; // async () => true when a new key was set and the request may be retried
      this.askAvailable = null; // unknown until the first /ask answers 404 or not
      this.authorizing = null; // the pending onUnauthorized(), shared by requests refused at once
    }

    /** An absolute URL for a path the API returned, such as a hit's `url`. */
    url(path) {
      return new URL(path, this.api + "/").href;
    }

    params(q, k, offset, filters) {
      const params = new URLSearchParams({ q, k: String(k), offset: String(offset) });
      for (const name of FILTERS) {
        if (filters[name]) params.set(name, filters[name]);
      }
      return params;
    }

    async search({ q, k = 10, offset = 0, filters = {}, group = null, signal } = {}) {
      const params = this.params(q, k, offset, filters);
      if (group) params.set("group", group);
      const body = await this.get("/search", params, signal);
      return {
        hits: body.hits || [], groups: Array.isArray(body.groups) ? body.groups : null,
        tookMs: body.took_ms, queryId: body.query_id || null,
      };
    }

    async ask({ q, k = 10, filters = {}, signal } = {}) {
      if (this.askAvailable === false) return null;
      const body = await this.get("/ask", this.params(q, k, 0, filters), signal, true);
      this.askAvailable = body !== null;
      return body ? normalizeAsk(body) : null;
    }

    /** Answer and hits in one call (/ask, else /search), for callers that want to wait for both. */
    async query({ q, k = 10, offset = 0, filters = {}, answer = true, signal } = {}) {
      if (answer && offset === 0) {
        const asked = await this.ask({ q, k, filters, signal });
        if (asked) return asked;
      }
      return { answer: null, ...(await this.search({ q, k, offset, filters, signal })) };
    }

    /** One key prompt for all the requests refused together; true when the request may be retried. */
    async authorize(sentWith) {
      if (this.key !== sentWith) return true; // another request already got a new key
      if (!this.authorizing) {
        this.authorizing = Promise.resolve(this.onUnauthorized()).finally(() => {
          this.authorizing = null;
        });
      }
      return this.authorizing;
    }

    async stats(signal) {
      return this.get("/stats", new URLSearchParams(), signal);
    }

    async get(path, params, signal, optional = false, retried = false) {
      let response;
      const sentWith = this.key;
      try {
        const headers = this.key ? { Authorization: `Bearer ${this.key}` } : {};
        response = await fetch(`${this.api}${path}?${params}`, { signal, headers });
      } catch (err) {
        if (err.name === "AbortError") throw err;
        throw new SearchError(
          `Search is unavailable: the service at ${this.api} cannot be reached from this page.`,
          { network: true },
        );
      }
      if (response.status === 401 && !retried && this.onUnauthorized && (await this.authorize(sentWith))) {
        return this.get(path, params, signal, optional, true);
      }
      if (optional && (response.status === 404 || response.status === 405)) return null;
      let body = null;
      try {
        body = await response.json();
      } catch {
        /* not JSON: reported below */
      }
      if (!response.ok || body === null) {
        const reason = body && body.error ? body.error : `the service answered ${response.status}`;
        throw new SearchError(`Search failed: ${reason}`, { status: response.status });
      }
      return body;
    }
  }

  /** /ask's answer in one shape: {answer: {text, confidence, citations, note} | null, hits}. */
  function normalizeAsk(body) {
    const nested = body.answer && typeof body.answer === "object" ? body.answer : null;
    const text = nested ? nested.text : body.answer;
    const answer = text
      ? {
          text,
          confidence: nested ? nested.confidence : body.confidence,
          citations: (nested ? nested.citations : body.citations) || [],
        }
      : null;
    return { answer, hits: body.hits || [], tookMs: body.took_ms, queryId: body.query_id || null };
  }

  /** The server's snippet (escaped text, matches in <mark>) as DOM nodes: text and <mark> only. */
  function snippetFragment(html) {
    const doc = new DOMParser().parseFromString(`<body>${html || ""}</body>`, "text/html");
    const out = document.createDocumentFragment();
    for (const node of doc.body.childNodes) {
      if (node.nodeName === "MARK") {
        const mark = document.createElement("mark");
        mark.textContent = node.textContent;
        out.append(mark);
      } else {
        out.append(document.createTextNode(node.textContent));
      }
    }
    return out;
  }

  function hitUrl(client, hit) {
    return hit && hit.url ? client.url(hit.url) : null;
  }

  /** A citation's link: its own url, else the cited hit's (by `ref`, then by `source`). */
  function citationUrl(client, citation, hits) {
    if (citation.url) return client.url(citation.url);
    const byRef = Number.isInteger(citation.ref) ? hits[citation.ref - 1] : null;
    if (byRef && byRef.source === citation.source) return hitUrl(client, byRef);
    const same = hits.find((h) => h.source === citation.source);
    if (same) return hitUrl(client, same);
    const [path, fragment] = String(citation.source || "").split("#", 2);
    const doc = hits.find((h) => h.doc_path === path && h.doc_id != null);
    return doc ? client.url(`/documents/${doc.doc_id}${fragment ? "#" + fragment : ""}`) : null;
  }

  function formatDate(iso) {
    const date = new Date(`${String(iso).slice(0, 10)}T00:00:00Z`);
    if (Number.isNaN(date.getTime())) return String(iso);
    return new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" }).format(date);
  }

  /** A confidence (0-1 number or a word) as a short label. */
  function confidenceLabel(value) {
    if (typeof value === "number" && Number.isFinite(value)) {
      const level = value >= 0.75 ? "high" : value >= 0.45 ? "medium" : "low";
      return `${level} confidence (${Math.round(value * 100)}%)`;
    }
    return value ? `${value} confidence` : "";
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  /** Answer text with its [n] markers linked to the cited sources. */
  function answerFragment(client, answer, hits) {
    const out = document.createDocumentFragment();
    const byRef = new Map(answer.citations.filter((c) => c.ref != null).map((c) => [String(c.ref), c]));
    String(answer.text)
      .split(/(\[\d+\])/)
      .forEach((part) => {
        const ref = /^\[(\d+)\]$/.exec(part);
        const citation = ref && byRef.get(ref[1]);
        const href = citation && citationUrl(client, citation, hits);
        if (href) {
          out.append(el("a", { class: "cite", href, title: citation.title || citation.source }, part));
        } else if (part) {
          out.append(document.createTextNode(part));
        }
      });
    return out;
  }

  const STYLE = `
    :host {
      all: initial;
      display: block;
      position: relative;
      max-width: 40rem;
      --_accent: var(--km-accent, #2454d6);
      --_bg: var(--km-bg, #ffffff);
      --_fg: var(--km-fg, #1b1f24);
      --_muted: var(--km-muted, #5b6470);
      --_border: var(--km-border, #d5dae1);
      --_mark: var(--km-mark, #fff1a8);
      --_soft: color-mix(in srgb, var(--_accent) 9%, var(--_bg));
      font: 15px/1.45 var(--km-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
      color: var(--_fg);
    }
    @media (prefers-color-scheme: dark) {
      :host {
        --_accent: var(--km-accent, #8fb0ff);
        --_bg: var(--km-bg, #1b1e24);
        --_fg: var(--km-fg, #e8eaee);
        --_muted: var(--km-muted, #a3abb7);
        --_border: var(--km-border, #3a404b);
        --_mark: var(--km-mark, #6b5a12);
      }
    }
    :host([hidden]) { display: none; }
    *, *::before, *::after { box-sizing: border-box; }
    .box {
      display: flex; align-items: center; gap: .5rem;
      padding: 0 .75rem; border: 1px solid var(--_border); border-radius: .6rem;
      background: var(--_bg);
    }
    .box:focus-within { border-color: var(--_accent); box-shadow: 0 0 0 3px color-mix(in srgb, var(--_accent) 25%, transparent); }
    .box svg { flex: none; width: 1.1em; height: 1.1em; color: var(--_muted); }
    input {
      all: unset; flex: 1; min-width: 0; padding: .6rem 0; font: inherit; color: var(--_fg);
    }
    input::placeholder { color: var(--_muted); opacity: 1; }
    input::-webkit-search-cancel-button { cursor: pointer; }
    .spinner {
      width: 1em; height: 1em; border-radius: 50%; flex: none;
      border: 2px solid var(--_border); border-top-color: var(--_accent); animation: spin .8s linear infinite;
    }
    .spinner[hidden] { display: none; }
    @keyframes spin { to { transform: rotate(360deg); } }
    .panel {
      position: absolute; z-index: 2147483000; left: 0; right: 0; top: calc(100% + .35rem);
      max-height: min(70vh, 34rem); overflow-y: auto;
      background: var(--_bg); color: var(--_fg);
      border: 1px solid var(--_border); border-radius: .6rem;
      box-shadow: 0 12px 32px rgba(15, 23, 42, .18);
    }
    .panel[hidden], .answer[hidden], .more[hidden] { display: none; }
    .answer { margin: .5rem; padding: .65rem .8rem; border-radius: .5rem; background: var(--_soft); }
    .answer-label { font-size: .75rem; font-weight: 600; letter-spacing: .04em; text-transform: uppercase; color: var(--_muted); }
    .answer-text { margin: .2rem 0 .35rem; white-space: pre-line; }
    .answer ol { margin: 0; padding-left: 1.3rem; font-size: .85rem; color: var(--_muted); }
    a { color: var(--_accent); }
    a.cite { text-decoration: none; font-size: .8em; vertical-align: super; }
    ul { list-style: none; margin: 0; padding: .25rem 0; }
    li a {
      display: block; padding: .55rem .8rem; color: inherit; text-decoration: none;
      border-left: 3px solid transparent;
    }
    li[aria-selected="true"] a, li a:hover { background: var(--_soft); border-left-color: var(--_accent); }
    .title { display: block; font-weight: 600; color: var(--_accent); }
    .path { display: block; font-size: .8rem; color: var(--_muted); }
    .snippet { margin-top: .15rem; font-size: .88rem;
      display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
    mark { background: var(--_mark); color: inherit; border-radius: 2px; padding: 0 1px; }
    .badges { display: flex; flex-wrap: wrap; gap: .3rem; margin-top: .3rem; }
    .badge { font-size: .72rem; padding: .05rem .45rem; border-radius: 999px; border: 1px solid var(--_border); color: var(--_muted); }
    .state { margin: 0; padding: .7rem .8rem; color: var(--_muted); font-size: .9rem; }
    .state:empty { display: none; }
    :host([data-state="error"]) .state { color: #b42318; }
    @media (prefers-color-scheme: dark) { :host([data-state="error"]) .state { color: #ff8a80; } }
    .more { display: block; padding: .55rem .8rem; border-top: 1px solid var(--_border); font-size: .85rem; text-decoration: none; }
    .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
  `;

  class KmSearchElement extends HTMLElement {
    static observedAttributes = ["api", "api-key", "placeholder"];

    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `
        <style>${STYLE}</style>
        <div class="box" part="box">
          <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
            <circle cx="11" cy="11" r="7"></circle><path d="m20 20-3.5-3.5"></path></svg>
          <input type="search" role="combobox" aria-autocomplete="list" aria-expanded="false"
                 aria-controls="list" autocomplete="off" spellcheck="false" enterkeyhint="search">
          <span class="spinner" hidden aria-hidden="true"></span>
        </div>
        <div class="panel" part="panel" hidden>
          <div class="answer" role="note" hidden></div>
          <ul id="list" role="listbox" aria-label="Results"></ul>
          <p class="state" role="status" aria-live="polite"></p>
          <a class="more" hidden>See all results</a>
        </div>`;
      this.input = root.querySelector("input");
      this.panel = root.querySelector(".panel");
      this.answerBox = root.querySelector(".answer");
      this.list = root.querySelector("ul");
      this.state = root.querySelector(".state");
      this.more = root.querySelector(".more");
      this.spinner = root.querySelector(".spinner");
      this.active = -1;
      this.seq = 0;
      this.timer = null;
      this.controller = null;
      this.onOutside = (event) => {
        if (!event.composedPath().includes(this)) this.close();
      };
      this.input.addEventListener("input", () => this.schedule());
      this.input.addEventListener("keydown", (event) => this.onKey(event));
      this.input.addEventListener("focus", () => {
        if (this.list.children.length || this.state.textContent) this.openPanel();
      });
    }

    connectedCallback() {
      this.client = new Client(this.getAttribute("api") || SCRIPT_ORIGIN, this.getAttribute("api-key"));
      this.applyPlaceholder();
      document.addEventListener("pointerdown", this.onOutside);
    }

    disconnectedCallback() {
      document.removeEventListener("pointerdown", this.onOutside);
    }

    attributeChangedCallback(name) {
      if (name === "api" || name === "api-key") {
        this.client = new Client(this.getAttribute("api") || SCRIPT_ORIGIN, this.getAttribute("api-key"));
      }
      if (name === "placeholder") this.applyPlaceholder();
    }

    applyPlaceholder() {
      const text = this.getAttribute("placeholder") || "Search the knowledge base…";
      this.input.placeholder = text;
      this.input.setAttribute("aria-label", this.getAttribute("aria-label") || text);
    }

    get count() {
      const n = parseInt(this.getAttribute("results") || "5", 10);
      return Math.min(20, Math.max(1, Number.isFinite(n) ? n : 5));
    }

    get target() {
      return this.getAttribute("target") === "_self" ? "_self" : "_blank";
    }

    get filters() {
      return Object.fromEntries(FILTERS.map((name) => [name, this.getAttribute(name) || ""]));
    }

    schedule(delay) {
      clearTimeout(this.timer);
      const q = this.input.value.trim();
      if (q.length < 2) {
        this.seq++;
        if (this.controller) this.controller.abort();
        this.spinner.hidden = true;
        this.clear();
        this.close();
        return;
      }
      const wait = delay ?? parseInt(this.getAttribute("debounce") || "250", 10);
      this.timer = setTimeout(() => this.search(q), Number.isFinite(wait) ? wait : 250);
    }

    async search(q) {
      const seq = ++this.seq;
      if (this.controller) this.controller.abort();
      this.controller = new AbortController();
      this.spinner.hidden = false;
      this.setAttribute("aria-busy", "true");
      const request = { q, k: this.count, filters: this.filters, signal: this.controller.signal };
      // Both start now; the results show as soon as /search answers, the answer when /ask does.
      const asking = this.client.ask(request).catch(() => null); // no answer is no reason to hide results
      try {
        const result = await this.client.search(request);
        if (seq !== this.seq) return;
        this.show(q, { answer: null, hits: result.hits });
        this.spinner.hidden = true;
        this.removeAttribute("aria-busy");
        const asked = await asking;
        if (seq !== this.seq || !asked || !asked.answer || !result.hits.length) return;
        this.showAnswer(asked.answer, asked.hits);
      } catch (err) {
        if (err.name === "AbortError" || seq !== this.seq) return;
        this.clear();
        this.dataset.state = "error";
        this.state.textContent = err.message;
        this.openPanel();
        this.dispatchEvent(new CustomEvent("km-error", { detail: { message: err.message }, bubbles: true, composed: true }));
      } finally {
        if (seq === this.seq) {
          this.spinner.hidden = true;
          this.removeAttribute("aria-busy");
        }
      }
    }

    clear() {
      this.list.replaceChildren();
      this.answerBox.replaceChildren();
      this.answerBox.hidden = true;
      this.state.textContent = "";
      this.state.className = "state";
      this.more.hidden = true;
      this.setActive(-1);
      delete this.dataset.state;
    }

    /** The answer box above the results, filled when /ask arrives. */
    showAnswer(answer, hits) {
      const target = this.target;
      const sources = el("ol");
      answer.citations.forEach((c) => {
        const href = citationUrl(this.client, c, hits);
        const label = c.title || c.source;
        sources.append(el("li", {}, href ? el("a", { href, target, rel: "noopener" }, label) : label));
      });
      const confidence = confidenceLabel(answer.confidence);
      this.answerBox.replaceChildren(
        el("div", { class: "answer-label" }, "Answer", confidence ? ` · ${confidence}` : ""),
        el("p", { class: "answer-text" }, answerFragment(this.client, answer, hits)),
        answer.citations.length ? sources : null,
      );
      this.answerBox.querySelectorAll("a").forEach((a) => {
        a.target = target;
        a.rel = "noopener";
      });
      this.answerBox.hidden = false;
    }

    show(q, { answer, hits }) {
      this.clear();
      const target = this.target;
      if (answer) this.showAnswer(answer, hits);
      hits.forEach((hit, i) => {
        const href = hitUrl(this.client, hit);
        const badges = el("span", { class: "badges" });
        if (hit.type) badges.append(el("span", { class: "badge" }, hit.type));
        if (hit.project) badges.append(el("span", { class: "badge" }, hit.project));
        if (hit.modified) badges.append(el("span", { class: "badge" }, formatDate(hit.modified)));
        const path = (hit.heading_path || []).filter((h) => h !== hit.title).join(" › ");
        const link = el(
          "a",
          { href, target, rel: "noopener", tabindex: "-1" },
          el("span", { class: "title" }, hit.title || hit.doc_path),
          path ? el("span", { class: "path" }, path) : null,
          el("span", { class: "snippet" }, snippetFragment(hit.snippet)),
          badges.childElementCount ? badges : null,
        );
        this.list.append(el("li", { role: "option", id: `option-${i}`, "aria-selected": "false" }, link));
      });
      const params = new URLSearchParams({ q });
      for (const [name, value] of Object.entries(this.filters)) if (value) params.set(name, value);
      this.more.href = this.client.url(`/?${params}`);
      this.more.target = target;
      this.more.hidden = false;
      if (!hits.length && !answer) {
        this.dataset.state = "empty";
        this.state.textContent = `No results for “${q}”.`;
      } else {
        this.dataset.state = "results";
        this.state.textContent = `${hits.length} result${hits.length === 1 ? "" : "s"}`;
        this.state.classList.add("visually-hidden"); // for screen readers only
      }
      this.openPanel();
    }

    openPanel() {
      this.panel.hidden = false;
      this.input.setAttribute("aria-expanded", "true");
    }

    close() {
      this.panel.hidden = true;
      this.input.setAttribute("aria-expanded", "false");
      this.setActive(-1);
    }

    setActive(index) {
      const options = [...this.list.children];
      options.forEach((o, i) => o.setAttribute("aria-selected", String(i === index)));
      this.active = index;
      if (index >= 0 && options[index]) {
        this.input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        this.input.removeAttribute("aria-activedescendant");
      }
    }

    onKey(event) {
      const n = this.list.children.length;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (!n) return;
        event.preventDefault();
        this.openPanel();
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.setActive(this.active < 0 ? (step > 0 ? 0 : n - 1) : (this.active + step + n) % n);
      } else if (event.key === "Enter") {
        event.preventDefault();
        const link = this.active >= 0 ? this.list.children[this.active].querySelector("a") : null;
        if (link && link.href) link.click();
        else this.schedule(0);
      } else if (event.key === "Escape") {
        if (!this.panel.hidden) this.close();
        else this.input.value = "";
      }
    }
  }

  globalThis.KmSearch = Object.freeze({
    Client, SearchError, snippetFragment, hitUrl, citationUrl, answerFragment, confidenceLabel, formatDate, el,
  });
  if (!customElements.get("km-search")) customElements.define("km-search", KmSearchElement);
})();
