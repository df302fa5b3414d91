"""Captioners: prompt templates with placeholders from earlier scheme steps, an HTTP endpoint
(OpenAI-compatible chat completions with the image inline) and an echo backend for dry runs and
tests (docs/taggers.md#detectors-and-captioners)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from PIL import Image

from apps.core.exceptions import DomainError, TransientError
from apps.taggers.engine.base import BackendSpec

DEFAULT_TIMEOUT_S = 120.0
# `{tags:<step>}` and `{character}`; any other `{…}` is an unknown placeholder.
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
STEP_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class PromptError(DomainError):
    default_code = "taggers.prompt"


def placeholders(template: str) -> list[tuple[str, str | None]]:
    """[("tags", step) | ("character", None)] in order of appearance; PromptError for others."""
    found: list[tuple[str, str | None]] = []
    for match in PLACEHOLDER.finditer(template):
        body = match.group(1)
        if body == "character":
            found.append(("character", None))
        elif body.startswith("tags:") and STEP_KEY.match(body[5:]):
            found.append(("tags", body[5:]))
        else:
            raise PromptError(
                f"Unknown placeholder {{{body}}} in the prompt; use {{tags:<step>}} or {{character}}."
            )
    return found


def render(template: str, tags: Mapping[str, Sequence[str]], character: str | None) -> str:
    """The prompt with `{tags:<step>}` → that step's tags joined by ", " and `{character}` → the
    region's character (empty when none)."""

    def fill(match: re.Match[str]) -> str:
        body = match.group(1)
        if body == "character":
            return character or ""
        return ", ".join(tags.get(body[5:], ()))

    placeholders(template)
    return PLACEHOLDER.sub(fill, template)


def prompt_sha256(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class EchoCaptioner:
    """Answers each prompt with itself (prefixed by `params.prefix`, default ""): scheme dry runs
    and tests, no model, no network."""

    kind: ClassVar[str] = "captioner"
    needs: ClassVar[frozenset[str]] = frozenset({"pixels"})

    def load(self, spec: BackendSpec | None = None, device: str = "cpu") -> None:
        return None

    def unload(self) -> None:
        return None

    def run(
        self, images: Sequence[Image.Image], prompts: Sequence[str], params: Mapping[str, Any] | None = None
    ) -> list[str]:
        prefix = str((params or {}).get("prefix", ""))
        return [f"{prefix}{p}" for p in prompts[: len(images)]]


class HttpCaptioner:
    """An OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, llama.cpp server, …); params:
    `url`, `model`, `timeout_s` (default 120), `max_tokens`."""

    kind: ClassVar[str] = "captioner"
    needs: ClassVar[frozenset[str]] = frozenset({"pixels"})

    def __init__(self) -> None:
        self.url = ""
        self.model = ""
        self.timeout = DEFAULT_TIMEOUT_S

    def load(self, spec: BackendSpec, device: str = "cpu") -> None:
        """spec.options: the tagger's params (url, model, timeout_s)."""
        params = spec.options
        url = str(params.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise DomainError(
                "A captioner endpoint needs params.url starting with http:// or https://.",
                code="taggers.captioner_url",
            )
        self.url = url
        self.model = str(params.get("model") or "")
        self.timeout = float(params.get("timeout_s", DEFAULT_TIMEOUT_S))

    def unload(self) -> None:
        return None

    def _one(self, image: Image.Image, prompt: str, max_tokens: int) -> str:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=90)
        data_url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        body = {
            "model": self.model,
            "max_tokens": max_tokens,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                }
            ],
        }
        request = urllib.request.Request(  # noqa: S310 (scheme checked in load)
            self.url,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                answer = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise TransientError(f"captioner endpoint answered {exc.code}") from exc
            raise DomainError(
                f"The captioner endpoint {self.url} refused the request ({exc.code}).",
                code="taggers.captioner_refused",
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise TransientError(f"captioner endpoint unreachable: {exc}") from exc
        try:
            return str(answer["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError) as exc:
            raise DomainError(
                f"The captioner endpoint {self.url} did not answer in the chat-completions shape.",
                code="taggers.captioner_answer",
            ) from exc

    def run(
        self, images: Sequence[Image.Image], prompts: Sequence[str], params: Mapping[str, Any] | None = None
    ) -> list[str]:
        max_tokens = int((params or {}).get("max_tokens", 300))
        return [self._one(img, prompt, max_tokens) for img, prompt in zip(images, prompts, strict=True)]
