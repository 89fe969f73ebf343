"""The search page, the widget script and CORS over HTTP, without a browser (fast; no index needed)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from km_search.http.app import create_app
from km_search.http.routes.web import WEB
from km_search.service import SearchService
from km_search.settings import Settings

INTRANET = "https://intranet.example"
OTHER = "https://evil.example"


@pytest.fixture
def client_for(settings, fake_embedder):
    """A client of an app with the given KM_CORS_ORIGINS (as the env var would spell them)."""

    def make(origins: str = "") -> TestClient:
        configured = Settings(index_dir=settings.index_dir, cors_origins=origins)
        return TestClient(create_app(configured, SearchService(configured, "nope", embedder=fake_embedder)))

    return make


def test_the_page_loads_only_its_own_assets_and_no_inline_script(client_for):
    client = client_for()
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", page.text), "inline script breaks the CSP"
    assert not re.search(r"\son\w+\s*=", page.text), "inline event handlers break the CSP"
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in {a.split("?")[0] for a in assets} - {"/"}:
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize("name", ["app.js", "app.css", "widget.js", "viewer.css", "index.html"])
def test_no_static_file_fetches_anything_from_another_host(name):
    text = (WEB / name).read_text()
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)  # the widget's usage comment names an example host
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", code, re.IGNORECASE), name
    assert "@import" not in code


def test_the_widget_is_a_classic_script_any_page_can_load(client_for):
    response = client_for().get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert 'customElements.define("km-search"' in response.text
    assert not re.search(r"^\s*(?:import|export)\s", response.text, re.MULTILINE)  # not a module


def test_an_allowed_origin_gets_cors_headers_even_on_errors(client_for):
    client = client_for(f"{INTRANET}, https://wiki.example/")
    for url in ("/search?q=hello", "/no-such-route"):  # 503 (no index here), 404 (the page's /ask probe)
        response = client.get(url, headers={"Origin": INTRANET})
        assert response.headers["access-control-allow-origin"] == INTRANET
        assert "origin" in response.headers["vary"].lower()
    assert client.get("/healthz", headers={"Origin": "https://wiki.example"}).headers[
        "access-control-allow-origin"] == "https://wiki.example"


def test_preflight_is_answered_for_allowed_origins_only(client_for):
    client = client_for(INTRANET)
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/search", headers={"Origin": INTRANET, **asked})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == INTRANET
    assert "POST" in ok.headers["access-control-allow-methods"]
    refused = client.options("/search", headers={"Origin": OTHER, **asked})
    assert refused.status_code >= 400 and "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize("origins", ["", INTRANET])
def test_other_origins_get_no_cors_headers(client_for, origins):
    response = client_for(origins).get("/search?q=hello", headers={"Origin": OTHER})
    assert not any(h.startswith("access-control-") for h in response.headers)


def test_cors_origins_setting_is_a_comma_separated_list_of_bare_origins(monkeypatch):
    monkeypatch.setenv("KM_CORS_ORIGINS", "https://intranet.example, http://localhost:3000/ https://wiki.example")
    assert Settings().cors_origins == ["https://intranet.example", "http://localhost:3000", "https://wiki.example"]
    monkeypatch.setenv("KM_CORS_ORIGINS", "")
    assert Settings().cors_origins == []
    for bad in ("intranet.example", "https://intranet.example/search", "ftp://files.example"):
        monkeypatch.setenv("KM_CORS_ORIGINS", bad)
        with pytest.raises(ValidationError, match="write it as scheme://host"):
            Settings()
