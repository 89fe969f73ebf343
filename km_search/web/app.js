// The search page. Its state lives in the URL (?q=&page=&type=&project=&author=), so reloading,
// sharing a link and the back button all work. The API client is the widget's (widget.js).

const { Client, snippetFragment, hitUrl, citationUrl, answerFragment, confidenceLabel, formatDate, el } =
  globalThis.KmSearch;

const PAGE_SIZE = 10;
const FILTERS = ["type", "project", "author"];
const KEY = "km_key";
const client = new Client(location.origin, localStorage.getItem(KEY));
// KM_AUTH=keys: ask for a key when the server wants one; keep it in this browser, and in a cookie
// so that plain links to the source viewer (/documents/…) carry it too.
client.onUnauthorized = async () => {
  const key = (window.prompt("This knowledge base needs an API key. Paste yours:") || "").trim();
  if (!key) return false;
  localStorage.setItem(KEY, key);
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${KEY}=${encodeURIComponent(key)}; Path=/; SameSite=Strict${secure}`;
  client.key = key;
  return true;
};
const $ = (id) => document.getElementById(id);

const main = $("main");
const form = $("search-form");
const input = $("q");
const statusLine = $("status");
const errorBox = $("error");
const answerCard = $("answer");
const results = $("results");
const emptyBox = $("empty");
const pager = $("pager");
const welcome = $("welcome");
const clearFilters = $("clear-filters");
const seen = Object.fromEntries(FILTERS.map((name) => [name, new Set()]));
let controller = null;

function readUrl() {
  const params = new URLSearchParams(location.search);
  const page = parseInt(params.get("page") || "1", 10);
  return {
    q: (params.get("q") || "").trim(),
    page: Number.isFinite(page) && page > 0 ? page : 1,
    filters: Object.fromEntries(FILTERS.map((name) => [name, (params.get(name) || "").trim()])),
  };
}

function urlOf(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const name of FILTERS) if (state.filters[name]) params.set(name, state.filters[name]);
  if (state.page > 1) params.set("page", String(state.page));
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

function readForm(page = 1) {
  return {
    q: input.value.trim(),
    page,
    filters: Object.fromEntries(FILTERS.map((name) => [name, form.elements[name].value.trim()])),
  };
}

function fillForm(state) {
  input.value = state.q;
  for (const name of FILTERS) form.elements[name].value = state.filters[name];
  clearFilters.hidden = !FILTERS.some((name) => state.filters[name]);
}

function navigate(state) {
  if (urlOf(state) !== location.pathname + location.search) history.pushState(null, "", urlOf(state));
  run(state);
}

function resetView() {
  errorBox.hidden = true;
  answerCard.hidden = true;
  emptyBox.hidden = true;
  pager.hidden = true;
  welcome.hidden = true;
}

async function run(state) {
  fillForm(state);
  resetView();
  document.title = state.q ? `${state.q} · km-search` : "km-search";
  if (controller) controller.abort();
  const mine = (controller = new AbortController());
  if (!state.q) {
    results.replaceChildren();
    statusLine.textContent = "";
    showWelcome(mine.signal);
    return;
  }
  const offset = (state.page - 1) * PAGE_SIZE; // documents: results are grouped by document
  main.setAttribute("aria-busy", "true");
  statusLine.textContent = "Searching…";
  const request = { q: state.q, k: PAGE_SIZE, offset, filters: state.filters, signal: mine.signal };
  // /search and /ask start together: the results show as soon as /search answers, the answer card
  // when /ask does (it takes longer). An /ask that fails costs the answer, never the results.
  const asking = state.page === 1 ? client.ask(request).catch(() => null) : Promise.resolve(null);
  let found;
  try {
    found = await client.search({ ...request, group: "document" });
  } catch (err) {
    if (err.name === "AbortError") return;
    results.replaceChildren();
    statusLine.textContent = "";
    errorBox.textContent = err.message;
    errorBox.hidden = false;
    return;
  } finally {
    if (controller === mine) main.removeAttribute("aria-busy");
  }
  if (controller !== mine) return;
  show(state, offset, found);
  const asked = await asking;
  if (controller !== mine || !asked || !found.hits.length) return;
  renderAnswer(asked.answer, asked.hits);
}

function show(state, offset, { hits, groups, tookMs }) {
  // One entry per document (its best passage, the others under "more from this document"); a
  // server without grouping sends passages only, shown one per entry.
  const entries = groups || hits.map((hit) => ({ best: hit, more: [] }));
  results.replaceChildren(...entries.map((group, i) => resultItem(group.best, offset + i + 1, group.more || [])));
  remember(entries.flatMap((group) => [group.best, ...(group.more || [])]));
  const took = Number.isFinite(tookMs) ? ` · ${Math.round(tookMs)} ms` : "";
  if (!entries.length) {
    statusLine.textContent = "";
    const filtered = FILTERS.some((name) => state.filters[name]);
    $("empty-text").textContent =
      state.page > 1
        ? `No more results for “${state.q}” after page ${state.page - 1}.`
        : `Nothing matches “${state.q}”. ${filtered ? "Try clearing the filters." : "Try other or fewer words."}`;
    emptyBox.hidden = false;
  } else {
    statusLine.textContent = `Results ${offset + 1}–${offset + entries.length} for “${state.q}”${took}`;
  }
  const more = entries.length === PAGE_SIZE;
  pager.hidden = state.page === 1 && !more;
  $("prev").disabled = state.page === 1;
  $("next").disabled = !more;
  $("page-label").textContent = `Page ${state.page}`;
}

function renderAnswer(answer, hits) {
  if (!answer) return;
  $("answer-text").replaceChildren(answerFragment(client, answer, hits));
  $("answer-confidence").textContent = confidenceLabel(answer.confidence);
  $("citations").replaceChildren(
    ...answer.citations.map((citation, i) => {
      const href = citationUrl(client, citation, hits);
      const title = citation.title || citation.source;
      const quote = String(citation.text || "");
      return el(
        "li",
        { value: String(citation.ref ?? i + 1) },
        href ? el("a", { href }, title) : title,
        quote ? " — " : null,
        quote ? el("q", {}, quote.length > 220 ? `${quote.slice(0, 220)}…` : quote) : null,
      );
    }),
  );
  answerCard.hidden = false;
}

/** The other passages of a result's document among the results, collapsed under it. */
function moreFromDocument(hit, more) {
  if (!more.length) return null;
  const items = more.map((other) => {
    const href = hitUrl(client, other);
    const where = (other.heading_path || []).filter((h) => h !== hit.title).join(" › ")
      || (other.page ? `Page ${other.page}` : other.source);
    return el(
      "li",
      {},
      href ? el("a", { href }, where) : where,
      el("p", { class: "snippet" }, snippetFragment(other.snippet)),
    );
  });
  return el(
    "details",
    { class: "more-from-doc" },
    el("summary", {}, `More from this document (${more.length})`),
    el("ul", {}, ...items),
  );
}

function resultItem(hit, rank, more = []) {
  const href = hitUrl(client, hit);
  const titleId = `result-${rank}`;
  const title = hit.title || hit.doc_path;
  const path = (hit.heading_path || []).filter((h) => h !== hit.title).join(" › ");
  const meta = el("div", { class: "result-meta" });
  for (const name of ["type", "project"]) {
    if (hit[name]) {
      meta.append(el("button", {
        type: "button", class: `badge ${name}`, "data-filter": name, "data-value": hit[name],
        title: `Show only ${name} “${hit[name]}”`,
      }, hit[name]));
    }
  }
  if (hit.modified) meta.append(el("time", { class: "badge date", datetime: hit.modified }, formatDate(hit.modified)));
  if (hit.authors && hit.authors.length) meta.append(el("span", { class: "authors" }, hit.authors.join(", ")));
  meta.append(href ? el("a", { class: "source", href }, hit.source) : el("span", { class: "source" }, hit.source));
  return el(
    "li",
    { class: "result", "aria-labelledby": titleId },
    el("h2", { class: "result-title", id: titleId }, href ? el("a", { class: "result-link", href }, title) : title),
    path ? el("p", { class: "heading-path" }, path) : null,
    el("p", { class: "snippet" }, snippetFragment(hit.snippet)),
    meta,
    moreFromDocument(hit, more),
  );
}

/** Filter values seen in results become suggestions in the filter boxes. */
function remember(hits) {
  for (const hit of hits) {
    if (hit.type) seen.type.add(hit.type);
    if (hit.project) seen.project.add(hit.project);
    for (const author of hit.authors || []) seen.author.add(author);
  }
  for (const name of FILTERS) {
    $(`${name}-options`).replaceChildren(...[...seen[name]].sort().map((value) => el("option", { value })));
  }
}

async function showWelcome(signal) {
  welcome.hidden = false;
  try {
    const stats = await client.stats(signal);
    $("index-summary").textContent =
      `${stats.documents} documents, ${stats.chunks} passages in index “${stats.index}”, updated ${formatDate(stats.created)}.`;
  } catch (err) {
    if (err.name === "AbortError") return;
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  }
}

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

/** `/` focuses the box; ↓/↑ move from the box through the results and back; Esc returns to the box. */
function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  if (event.key === "/" && !isTyping(target)) {
    event.preventDefault();
    input.focus();
    input.select();
    return;
  }
  const links = [...results.querySelectorAll(".result-link")];
  const item = target instanceof Element ? target.closest(".result") : null;
  const at = item ? [...results.children].indexOf(item) : -1;
  if (event.key === "ArrowDown" && (target === input || at >= 0) && links.length) {
    event.preventDefault();
    links[Math.min(at + 1, links.length - 1)].focus();
  } else if (event.key === "ArrowUp" && at >= 0) {
    event.preventDefault();
    (at === 0 ? input : links[at - 1]).focus();
  } else if (event.key === "Escape" && at >= 0) {
    input.focus();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  navigate(readForm(1));
});
for (const name of FILTERS) {
  form.elements[name].addEventListener("change", () => {
    if (input.value.trim()) navigate(readForm(1));
  });
}
clearFilters.addEventListener("click", () => {
  for (const name of FILTERS) form.elements[name].value = "";
  navigate(readForm(1));
});
results.addEventListener("click", (event) => {
  const badge = event.target instanceof Element ? event.target.closest("button[data-filter]") : null;
  if (!badge) return;
  form.elements[badge.dataset.filter].value = badge.dataset.value;
  navigate(readForm(1));
});
function turnPage(step) {
  const state = readUrl();
  navigate({ ...state, page: Math.max(1, state.page + step) });
  window.scrollTo({ top: 0 });
}
$("prev").addEventListener("click", () => turnPage(-1));
$("next").addEventListener("click", () => turnPage(1));
document.addEventListener("keydown", onKey);
window.addEventListener("popstate", () => run(readUrl()));

run(readUrl());
