"""Captioner prompts and backends (docs/taggers.md#detectors-and-captioners)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from PIL import Image

from apps.core.exceptions import DomainError, TransientError
from apps.taggers.engine.base import BackendSpec
from apps.taggers.engine.captioner import EchoCaptioner, HttpCaptioner, PromptError, placeholders, render


def test_placeholders_are_parsed_in_order() -> None:
    assert placeholders("Describe {character}. Context: {tags:picture}") == [
        ("character", None),
        ("tags", "picture"),
    ]


@pytest.mark.parametrize("template", ["{foo}", "{tags:}", "{tags:Bad Key}"])
def test_unknown_placeholders_are_refused(template: str) -> None:
    with pytest.raises(PromptError, match="Unknown placeholder"):
        placeholders(template)


def test_render_fills_tags_and_character() -> None:
    text = render("Describe {character}. Context: {tags:picture}", {"picture": ["a", "b"]}, "alice")
    assert text == "Describe alice. Context: a, b"


def test_echo_answers_the_prompt() -> None:
    assert EchoCaptioner().run([Image.new("RGB", (2, 2))], ["hi"], {"prefix": "> "}) == ["> hi"]


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][0]["content"][0]["text"]
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"choices": [{"message": {"content": f"seen: {text}"}}]}).encode())

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def endpoint():
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
    server.shutdown()
    _Handler.status = 200


def test_http_captioner_posts_prompt_and_image(endpoint: str) -> None:
    cap = HttpCaptioner()
    cap.load(
        BackendSpec(kind="captioner", model_ref="", options={"url": endpoint, "model": "m", "timeout_s": 5})
    )
    assert cap.run([Image.new("RGB", (4, 4))], ["what?"]) == ["seen: what?"]


def test_http_captioner_server_error_is_transient(endpoint: str) -> None:
    _Handler.status = 503
    cap = HttpCaptioner()
    cap.load(BackendSpec(kind="captioner", model_ref="", options={"url": endpoint, "timeout_s": 5}))
    with pytest.raises(TransientError):
        cap.run([Image.new("RGB", (4, 4))], ["x"])


def test_http_captioner_client_error_is_a_domain_error(endpoint: str) -> None:
    _Handler.status = 400
    cap = HttpCaptioner()
    cap.load(BackendSpec(kind="captioner", model_ref="", options={"url": endpoint, "timeout_s": 5}))
    with pytest.raises(DomainError, match="refused"):
        cap.run([Image.new("RGB", (4, 4))], ["x"])


def test_http_captioner_needs_an_http_url() -> None:
    with pytest.raises(DomainError, match=r"params\.url"):
        HttpCaptioner().load(
            BackendSpec(kind="captioner", model_ref="", options={"url": "file:///etc/passwd"})
        )
