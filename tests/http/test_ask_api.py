"""/ask, /ask/stream, /feedback and /analytics/gaps over a small index built with the hashing embedder,
and the generative path against a real local HTTP server that speaks the OpenAI chat completions API."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.chunking import chunk_document
from km_search.http.app import create_app
from km_search.service import SearchService
from km_search.index.writer import SnapshotWriter
from km_search.index.layout import SourceInfo
from km_search.types import Document, DocumentMeta, Section

DOCS = [
    ("hr/travel.md", "Travel policy", "hotels",
     "Book every trip in the travel tool. Hotels in London are reimbursed up to 220 GBP per night. "
     "Breakfast is included in that limit."),
    ("it/vpn.md", "VPN setup", "install",
     "Install the WireGuard client from the software center. Import the profile from the IT portal."),
    ("billing/adr-12.md", "Move billing to PostgreSQL", "context",
     "We moved billing to PostgreSQL because MySQL lacked transactional DDL. The migration took one weekend."),
]
HOTEL_QUESTION = "How much are hotels in London reimbursed per night?"
OFF_TOPIC = "Who painted the Mona Lisa?"


def build_index(settings, embedder) -> None:
    writer = SnapshotWriter(settings.index_path("default"), {"name": "default", "model": {"name": embedder.model_name}})
    for path, title, anchor, text in DOCS:
        doc = Document(path=path, format="md", sections=(Section(text, (title,), anchor=anchor),),
                       meta=DocumentMeta(title=title))
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo(path, "h", 1), chunks, embedder.encode([c.indexed_text() for c in chunks]))
    writer.publish()


@pytest.fixture
def make_client(settings, fake_embedder):
    build_index(settings, fake_embedder)
    clients = []

    def make(**overrides) -> TestClient:
        s = settings.model_copy(update={"answer_threshold": 0.35, **overrides})
        client = TestClient(create_app(s, SearchService(s, embedder=fake_embedder)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


# ---- extractive answers ----------------------------------------------------------------------


def test_ask_answers_with_a_verbatim_quote_and_its_offsets(client):
    body = client.get("/ask", params={"q": HOTEL_QUESTION}).json()
    assert body["answered"] is True and body["kind"] == "extractive" and body["note"] is None
    assert body["answer"].startswith("Hotels in London are reimbursed up to 220 GBP per night.")
    (citation,) = body["citations"]
    passage = body["hits"][citation["ref"] - 1]
    assert citation["source"] == passage["source"] == "hr/travel.md#hotels"
    assert passage["text"][citation["start"]:citation["end"]] == citation["text"] == body["answer"]
    assert citation["url"] == f"/documents/{passage['doc_id']}#hotels"
    assert 0.35 <= body["confidence"] <= 1 and body["query_id"]


def test_ask_abstains_on_weak_evidence_but_lists_the_closest_passages(client):
    body = client.get("/ask", params={"q": OFF_TOPIC, "k": 2}).json()
    assert body["answer"] is None and body["answered"] is False and body["kind"] == "none"
    assert body["citations"] == [] and len(body["hits"]) == 2
    assert body["confidence"] < 0.35 and "closest passages" in body["note"]


@pytest.mark.parametrize("params, fragment", [({}, "q: Field required"), ({"q": " "}, "the query is empty"),
                                               ({"q": "x", "k": 0}, "k: ")])
def test_ask_bad_requests_use_the_one_error_shape(client, params, fragment):
    for route in ("/ask", "/ask/stream"):
        response = client.get(route, params=params)
        assert response.status_code == 422
        assert response.json()["ok"] is False and fragment in response.json()["error"]


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_stream_without_a_language_model_sends_hits_then_the_answer(client):
    response = client.get("/ask/stream", params={"q": HOTEL_QUESTION})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [e for e, _ in events] == ["hits", "answer"]
    assert events[0][1]["hits"][0]["source"] == "hr/travel.md#hotels"
    assert events[1][1]["answer"].startswith("Hotels in London")


# ---- query log, feedback, gaps ---------------------------------------------------------------


def test_search_and_ask_are_logged_and_take_feedback(client, settings):
    search = client.get("/search", params={"q": "vpn client"}).json()
    ask = client.get("/ask", params={"q": OFF_TOPIC}).json()
    assert search["query_id"] and ask["query_id"] and search["query_id"] != ask["query_id"]
    ok = client.post("/feedback", json={"query_id": search["query_id"], "helpful": False, "target": "passage",
                                        "source": search["hits"][0]["source"], "comment": "old profile"})
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["feedback_id"] >= 1
    unknown = client.post("/feedback", json={"query_id": "nope", "helpful": True})
    assert unknown.status_code == 404 and "no logged query" in unknown.json()["error"]
    bad = client.post("/feedback", json={"query_id": ask["query_id"], "helpful": "maybe"})
    assert bad.status_code == 422 and bad.json()["ok"] is False
    assert (settings.index_path("default") / "querylog.sqlite").exists()


def test_gaps_group_unanswered_questions_into_topics(client):
    for q in (OFF_TOPIC, "who painted the mona lisa", "Who painted Mona Lisa?", "What is the capital of Peru?"):
        client.get("/ask", params={"q": q})
    answered = client.get("/ask", params={"q": HOTEL_QUESTION}).json()
    client.post("/feedback", json={"query_id": answered["query_id"], "helpful": False, "comment": "wrong city"})
    body = client.get("/analytics/gaps").json()
    assert body["totals"]["asked"] == 5 and body["totals"]["abstained"] == 4 and body["totals"]["negative_feedback"] == 1
    topics = {t["question"]: t for t in body["topics"]}
    mona = next(t for q, t in topics.items() if "mona lisa" in q.lower())
    assert mona["count"] == 3 and mona["abstained"] == 3 and len(mona["queries"]) == 2
    assert body["topics"][0] is not None and body["topics"][0]["count"] == 3
    assert "What is the capital of Peru?" in topics
    assert any(t["negative_feedback"] == 1 and t["comments"] == ["wrong city"] for t in body["topics"])
    assert client.get("/analytics/gaps", params={"limit": 1}).json()["topics"][0]["count"] == 3


def test_without_the_log_queries_work_and_feedback_says_why_not(make_client, settings):
    client = make_client(query_log=False)
    assert client.get("/search", params={"q": "vpn"}).json()["query_id"] is None
    assert client.get("/ask", params={"q": HOTEL_QUESTION}).json()["answered"] is True
    response = client.post("/feedback", json={"query_id": "x", "helpful": True})
    assert response.status_code == 503 and "KM_QUERY_LOG=false" in response.json()["error"]
    assert client.get("/analytics/gaps").status_code == 503
    assert not (settings.index_path("default") / "querylog.sqlite").exists()


def test_a_broken_log_does_not_fail_queries(make_client, settings):
    (settings.index_path("default") / "querylog.sqlite").mkdir()
    client = make_client()
    body = client.get("/ask", params={"q": HOTEL_QUESTION}).json()
    assert body["answered"] is True and body["query_id"] is None
    assert client.get("/search", params={"q": "vpn"}).status_code == 200


# ---- generative answers against a local OpenAI-compatible server -----------------------------


class FakeLLM:
    """A real HTTP server on 127.0.0.1 speaking POST /v1/chat/completions, plain and streamed."""

    def __init__(self):
        self.reply = "Hotels in London are reimbursed up to 220 GBP per night [1]. Breakfast is included [1]."
        self.delay = 0.0
        self.status = 200
        self.requests: list[dict] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                time.sleep(fake.delay)
                if fake.status != 200:
                    self._send(fake.status, "application/json", b'{"error": "model exploded"}')
                elif body.get("stream"):
                    chunks = [fake.reply[i:i + 12] for i in range(0, len(fake.reply), 12)]
                    data = "".join(
                        "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": c}}]}) + "\n\n"
                        for c in chunks) + "data: [DONE]\n\n"
                    self._send(200, "text/event-stream", data.encode())
                else:
                    reply = {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": fake.reply}, "finish_reason": "stop"}]}
                    self._send(200, "application/json", json.dumps(reply).encode())

            def _send(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def llm():
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def llm_client(make_client, llm):
    return make_client(llm_url=llm.url, llm_model="tiny-test", llm_timeout_s=0.5, llm_api_key=SecretStr("sekret"))


def test_generative_answer_cites_numbered_passages(llm_client, llm):
    body = llm_client.get("/ask", params={"q": HOTEL_QUESTION}).json()
    assert body["kind"] == "generative" and body["answered"] is True and body["note"] is None
    assert body["answer"] == llm.reply
    (citation,) = body["citations"]
    assert citation["ref"] == 1 and citation["source"] == body["hits"][0]["source"] == "hr/travel.md#hotels"
    assert body["hits"][0]["text"][citation["start"]:citation["end"]] == citation["text"]
    request = llm.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sekret"
    assert request["body"]["model"] == "tiny-test" and request["body"]["stream"] is False
    assert "[1] Travel policy" in request["body"]["messages"][1]["content"]


def test_uncited_generated_sentences_are_dropped_and_flagged(llm_client, llm):
    llm.reply = "Hotels in London are reimbursed up to 220 GBP per night [1]. Paris is cheaper."
    body = llm_client.get("/ask", params={"q": HOTEL_QUESTION}).json()
    assert body["answer"] == "Hotels in London are reimbursed up to 220 GBP per night [1]."
    assert "1 generated sentence without a citation was left out" in body["note"]


def test_an_answer_with_no_citation_falls_back_to_the_quote(llm_client, llm):
    llm.reply = "I don't know."
    body = llm_client.get("/ask", params={"q": HOTEL_QUESTION}).json()
    assert body["kind"] == "extractive" and body["answer"].startswith("Hotels in London")
    assert "no answer it could cite" in body["note"]


@pytest.mark.parametrize("delay, status, reason", [(1.0, 200, "did not answer within 0.5 s"), (0.0, 500, "HTTP 500")])
def test_timeouts_and_errors_fall_back_to_the_extractive_answer(llm_client, llm, delay, status, reason):
    llm.delay, llm.status = delay, status
    response = llm_client.get("/ask", params={"q": HOTEL_QUESTION})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "extractive" and body["answer"].startswith("Hotels in London")
    assert reason in body["note"] and "extractive answer is shown instead" in body["note"]


def test_an_unreachable_model_falls_back_too(make_client, llm):
    llm.close()
    body = make_client(llm_url=llm.url, llm_timeout_s=1.0).get("/ask", params={"q": HOTEL_QUESTION}).json()
    assert body["kind"] == "extractive" and "could not be reached" in body["note"]


def test_no_model_call_when_abstaining(llm_client, llm):
    body = llm_client.get("/ask", params={"q": OFF_TOPIC}).json()
    assert body["answered"] is False and llm.requests == []


def test_stream_sends_the_model_text_as_it_comes_then_the_checked_answer(llm_client, llm):
    events = sse_events(llm_client.get("/ask/stream", params={"q": HOTEL_QUESTION}).text)
    kinds = [e for e, _ in events]
    assert kinds[0] == "hits" and kinds[-1] == "answer" and kinds.count("delta") > 2
    assert "".join(d["text"] for e, d in events if e == "delta") == llm.reply
    final = events[-1][1]
    assert final["kind"] == "generative" and final["answer"] == llm.reply and final["query_id"]
    assert llm.requests[-1]["body"]["stream"] is True


def test_stream_timeout_falls_back_in_the_final_event(llm_client, llm):
    llm.delay = 1.0
    events = sse_events(llm_client.get("/ask/stream", params={"q": HOTEL_QUESTION}).text)
    assert [e for e, _ in events] == ["hits", "answer"]
    assert events[-1][1]["kind"] == "extractive" and "did not answer within 0.5 s" in events[-1][1]["note"]


def test_a_bad_llm_url_is_refused_at_startup(settings):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="KM_LLM_URL 'localhost:8080' is not an http"):
        settings.model_validate({**settings.model_dump(), "llm_url": "localhost:8080"})
