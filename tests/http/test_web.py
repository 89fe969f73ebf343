"""The search page and the embeddable widget in a real browser: headless Chromium (Debian's `chromium`
package, driven by Playwright for Python; no browser download) against the live `km serve` of the
e2e fixtures. The widget runs on intranet pages served from two other local origins, one of them on
KM_CORS_ORIGINS and one not. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extras install it
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p and Path(p).exists()), None)
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
QUERY = "why did we move billing to postgres?"
ADR = "billing/decisions/adr-012-move-billing-to-postgres.md"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(sync_playwright is None,
                       reason="browser tests need Playwright for Python: .venv/bin/pip install -c constraints.txt -e '.[dev]'"),
    pytest.mark.skipif(CHROMIUM is None,
                       reason="browser tests need Chromium: install Debian's package with "
                              "`sudo apt-get install -y chromium` (.ci/run does); no browser is downloaded"),
]


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab; a JavaScript error on any page fails the test."""
    context = browser.new_context(viewport={"width": 1100, "height": 820})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, errors


def _api(server: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{server}{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
        return json.load(r)


def _search(page, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")
    expect(page.locator(".result").first).to_be_visible()


def test_search_page_shows_ranked_results_whose_source_links_land_on_the_heading(page, server):
    page.goto(server + "/")
    expect(page.locator("#index-summary")).to_contain_text("documents")
    _search(page, QUERY)
    results = page.locator(".result")
    assert 3 <= results.count() <= 10
    expect(page.locator("#status")).to_contain_text("Results 1–10")
    first = results.first
    expect(first.locator(".result-title")).not_to_be_empty()
    expect(first.locator(".snippet mark").first).to_be_visible()
    expect(first.locator(".badge").first).to_be_visible()
    assert "q=why+did+we+move+billing" in page.url
    page.screenshot(path=SHOTS / "search-page.png")

    link = page.locator(f'.result a.source:text-matches("^{ADR}#")').first
    source = link.inner_text()
    anchor = source.split("#", 1)[1]
    link.click()
    page.wait_for_url("**/documents/*")
    assert page.url.endswith("#" + anchor)
    expect(page).to_have_title("ADR-012: Move billing to PostgreSQL · km-search")
    target = page.locator(f'[id="{anchor}"]')
    expect(target).to_be_in_viewport()
    assert target.evaluate("el => el.matches(':target')")
    page.screenshot(path=SHOTS / "source-viewer.png")
    page.go_back()
    expect(page.locator(".result").first).to_be_visible()  # the query came back from the URL
    assert page.input_value("#q") == QUERY


def test_a_pdf_result_opens_the_pdf_at_its_page(page, server):
    hits = _api(server, "/search", q="warehouse postgres disk full post-mortem", k=10)["hits"]
    pdf = next(h for h in hits if h["doc_path"].endswith(".pdf"))
    assert pdf["url"].endswith(f"#page={pdf['page']}")
    response = page.request.get(server + pdf["url"].split("#")[0])
    assert response.ok and response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF")


def test_keyboard_slash_arrows_and_enter(page, server):
    page.goto(server + "/")
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type(QUERY)
    page.keyboard.press("Enter")
    expect(page.locator(".result").first).to_be_visible()
    links = page.locator(".result-link")
    focused_index = "() => [...document.querySelectorAll('.result-link')].indexOf(document.activeElement)"
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused_index) == 0
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused_index) == 2
    page.keyboard.press("ArrowUp")
    assert page.evaluate(focused_index) == 1
    page.screenshot(path=SHOTS / "keyboard-focus.png")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("ArrowDown")
    href = links.first.get_attribute("href")
    page.keyboard.press("Enter")
    page.wait_for_url("**/documents/*")
    assert page.url == href


def test_answer_card_cites_its_sources_and_ask_is_optional(page, server):
    hits = _api(server, "/search", q=QUERY, k=5)["hits"]
    quote = hits[0]["text"][:80]
    answer = {
        "query": QUERY, "answer": "Billing moved to PostgreSQL for transactional DDL and JSONB [1].", "confidence": 0.82,
        "citations": [{"ref": 1, "source": hits[0]["source"], "title": hits[0]["title"], "text": quote,
                       "start": 0, "end": len(quote)}],
        "hits": hits, "took_ms": 12.0,
    }
    page.route("**/ask?*", lambda route: route.fulfill(json=answer))
    page.goto(server + "/?" + urllib.parse.urlencode({"q": QUERY}))
    card = page.locator("#answer")
    expect(card).to_be_visible()
    expect(card.locator("#answer-text")).to_contain_text("transactional DDL")
    expect(card.locator("#answer-confidence")).to_contain_text("high confidence")
    cite = card.locator("a.cite")
    assert cite.inner_text() == "[1]"
    assert cite.get_attribute("href") == server + hits[0]["url"]
    assert card.locator(".citations a").get_attribute("href") == server + hits[0]["url"]
    expect(card.locator(".citations q")).to_contain_text(quote[:40])
    page.screenshot(path=SHOTS / "answer-card.png")

    page.unroute("**/ask?*")
    page.route("**/ask?*", lambda route: route.fulfill(status=404, json={"ok": False, "status": 404, "error": "Not Found"}))
    page.goto(server + "/?q=postgres")
    expect(page.locator(".result").first).to_be_visible()  # /search answered instead
    expect(page.locator("#answer")).to_be_hidden()


def test_no_results_and_error_states(page, server):
    page.route("**/ask?*", lambda route: route.fulfill(status=404, json={"ok": False, "status": 404, "error": "Not Found"}))
    page.route("**/search?*", lambda route: route.fulfill(json={"query": "x", "hits": [], "k": 10, "offset": 0, "took_ms": 1}))
    page.goto(server + "/?q=zzzz")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#empty-text")).to_contain_text("Nothing matches “zzzz”")
    expect(page.locator(".result")).to_have_count(0)

    page.unroute("**/search?*")
    error = "index 'example' has no published snapshot: build it with `km ingest PATH --index example`"
    page.route("**/search?*", lambda route: route.fulfill(status=503, json={"ok": False, "status": 503, "error": error}))
    page.goto(server + "/?q=anything")
    expect(page.locator("#error")).to_contain_text("km ingest PATH --index example")
    expect(page.locator("#empty")).to_be_hidden()
    page.screenshot(path=SHOTS / "error-state.png")


def test_paging_and_filters_go_to_the_api(page, server):
    page.goto(server + "/?q=postgres")
    expect(page.locator(".result")).to_have_count(10)
    expect(page.locator("#prev")).to_be_disabled()
    first_page = page.locator(".result-link").first.get_attribute("href")
    page.click("#next")
    expect(page.locator("#status")).to_contain_text("Results 11–20")
    assert "page=2" in page.url and page.locator(".result-link").first.get_attribute("href") != first_page
    page.click("#prev")
    expect(page.locator("#status")).to_contain_text("Results 1–10")

    with page.expect_request(lambda r: ("/search?" in r.url or "/ask?" in r.url) and "author=" in r.url) as request:
        page.fill('input[name="project"]', "billing")
        page.fill('input[name="author"]', "Priya Raman")
        page.press('input[name="author"]', "Enter")
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(request.value.url).query)
    assert params["project"] == ["billing"] and params["author"] == ["Priya Raman"] and params["offset"] == ["0"]
    assert "project=billing" in page.url
    expect(page.locator("#clear-filters")).to_be_visible()
    with page.expect_request(lambda r: "/search?" in r.url or "/ask?" in r.url) as request:
        page.locator("button.badge.type").first.click()  # a type badge filters by its type
    assert "type" in urllib.parse.parse_qs(urllib.parse.urlsplit(request.value.url).query)


def _embed(intranet, server: str, name: str, with_api: bool) -> None:
    api = f' api="{server}"' if with_api else ""
    (intranet.folder / name).write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Billing team wiki</title>
<style>
  body {{ font-family: Georgia, serif; margin: 2rem 3rem; background: #f3efe6; color: #222; }}
  input {{ background: rgb(255, 0, 0) !important; font-size: 30px !important; }}
  li, a {{ color: rgb(255, 0, 0) !important; }}
  .title {{ font-size: 40px; }}
</style></head>
<body>
<h1>Billing team wiki</h1>
<p class="title">Welcome to the billing team's pages.</p>
<script src="{server}/widget.js" defer></script>
<km-search{api} project="billing" results="4" placeholder="Search billing docs"></km-search>
<p>Runbooks, decisions and post-mortems live in the knowledge base.</p>
</body></html>""")


def test_widget_on_an_allowed_intranet_origin(page, server, intranet):
    _embed(intranet, server, "wiki.html", with_api=False)  # api defaults to the origin that served widget.js
    searches: list[str] = []  # the query strings sent to /ask or /search

    def record(request) -> None:
        parts = urllib.parse.urlsplit(request.url)
        if request.url.startswith(server) and parts.path in ("/ask", "/search"):
            searches.append(parts.query)

    page.on("request", record)
    page.goto(intranet.allowed + "/wiki.html")
    box = page.locator("km-search input")
    expect(box).to_have_attribute("placeholder", "Search billing docs")
    box.click()
    page.keyboard.type("billing postgres migration", delay=25)
    options = page.locator("km-search [role=option]")
    expect(options).to_have_count(4)
    assert 1 <= len(set(searches)) <= 2, f"typing is debounced, yet these searches were sent: {searches}"
    assert "project=billing" in searches[-1] and "k=4" in searches[-1]

    # the host page's CSS stays out of the shadow DOM, and the widget's stays in
    assert box.evaluate("el => getComputedStyle(el).backgroundColor") != "rgb(255, 0, 0)"
    assert options.first.evaluate("el => getComputedStyle(el.querySelector('.title')).color") != "rgb(255, 0, 0)"
    assert page.locator("p.title").evaluate("el => getComputedStyle(el).fontSize") == "40px"

    page.keyboard.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-expanded", "true")
    page.screenshot(path=SHOTS / "widget.png")
    href = options.first.locator("a").get_attribute("href")
    assert href.startswith(server + "/documents/")
    with page.context.expect_page() as opened:  # target defaults to _blank: a new tab
        page.keyboard.press("Enter")
    assert opened.value.url == href or opened.value.url.startswith(href.split("#")[0])

    page.keyboard.press("Escape")
    expect(page.locator("km-search .panel")).to_be_hidden()


def test_widget_is_refused_from_an_origin_not_on_the_list(page, server, intranet):
    _embed(intranet, server, "elsewhere.html", with_api=True)
    page.goto(intranet.blocked + "/elsewhere.html")
    page.locator("km-search input").fill("billing postgres")
    expect(page.locator("km-search")).to_have_attribute("data-state", "error")
    expect(page.locator("km-search .state")).to_contain_text("cannot be reached")
    expect(page.locator("km-search [role=option]")).to_have_count(0)
    page.screenshot(path=SHOTS / "widget-blocked.png")

    def cors_header(origin: str) -> str | None:
        request = urllib.request.Request(f"{server}/search?q=billing", headers={"Origin": origin})
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.headers.get("Access-Control-Allow-Origin")

    assert cors_header(intranet.blocked) is None
    assert cors_header(intranet.allowed) == intranet.allowed


def test_widget_shows_the_answer_above_the_results(page, server, intranet):
    _embed(intranet, server, "wiki-answer.html", with_api=False)
    hits = _api(server, "/search", q=QUERY, k=4)["hits"]
    answer = {"answer": "To get transactional DDL and JSONB [1].", "confidence": 0.5, "hits": hits,
              "citations": [{"ref": 1, "source": hits[0]["source"], "title": hits[0]["title"],
                             "text": hits[0]["text"][:40], "start": 0, "end": 40}]}
    page.route("**/ask?*", lambda route: route.fulfill(
        json=answer, headers={"Access-Control-Allow-Origin": intranet.allowed}))
    page.goto(intranet.allowed + "/wiki-answer.html")
    page.locator("km-search input").fill(QUERY)
    box = page.locator("km-search .answer")
    expect(box).to_contain_text("transactional DDL")
    expect(box).to_contain_text("medium confidence")
    assert box.locator("a.cite").get_attribute("href") == server + hits[0]["url"]
    assert box.locator("a.cite").get_attribute("target") == "_blank"
    expect(page.locator("km-search [role=option]")).to_have_count(4)


def test_results_show_before_the_answer_arrives(page, server):
    """/search and /ask start together: the results are on the page while /ask is still pending."""
    pending = []
    page.route("**/ask?*", lambda route: pending.append(route))  # held: no answer until released
    page.goto(server + "/?" + urllib.parse.urlencode({"q": QUERY}))
    expect(page.locator(".result").first).to_be_visible()
    expect(page.locator("#status")).to_contain_text("Results 1–")
    assert len(pending) == 1, "the page asked /ask for an answer"
    expect(page.locator("#answer")).to_be_hidden()
    page.screenshot(path=SHOTS / "results-before-answer.png")
    pending[0].continue_()
    expect(page.locator("#answer")).to_be_visible()
    expect(page.locator("#answer-text")).not_to_be_empty()
    assert page.locator(".result").first.is_visible()
    # the answer card sits above the results
    assert page.locator("#answer").bounding_box()["y"] < page.locator(".result").first.bounding_box()["y"]


def test_results_are_grouped_by_document(page, server):
    page.goto(server + "/?" + urllib.parse.urlencode({"q": "why did we move billing to postgres"}))
    results = page.locator(".result")
    expect(results.first).to_be_visible()
    expect(page.locator("#answer")).to_be_visible()
    docs = [results.nth(i).locator("a.source").inner_text().split("#")[0] for i in range(3)]
    assert len(set(docs)) == 3, docs
    assert docs[0] == ADR
    more = results.first.locator("details.more-from-doc")
    expect(more.locator("summary")).to_contain_text("More from this document (")
    expect(more.locator("ul")).to_be_hidden()  # collapsed
    more.locator("summary").click()
    links = more.locator("li a")
    expect(links.first).to_be_visible()
    assert all(links.nth(i).get_attribute("href").startswith(server + "/documents/") for i in range(links.count()))
    page.screenshot(path=SHOTS / "grouped-results.png", full_page=True)


def test_widget_shows_results_before_the_answer(page, server, intranet):
    _embed(intranet, server, "wiki-pending.html", with_api=False)
    pending = []
    page.route("**/ask?*", lambda route: pending.append(route))
    page.goto(intranet.allowed + "/wiki-pending.html")
    page.locator("km-search input").fill(QUERY)
    expect(page.locator("km-search [role=option]")).to_have_count(4)
    expect(page.locator("km-search .answer")).to_be_hidden()
    assert pending, "the widget asked /ask too"
    pending[-1].continue_()
    expect(page.locator("km-search .answer")).to_be_visible()
    expect(page.locator("km-search [role=option]")).to_have_count(4)
