"""The openai SDK edge: one chat-completions call to any OpenAI-compatible server, within a time budget.

Structured output is tried in the order json_schema → json_object with the schema beside it (how
llama.cpp's Python server enforces one) → plain json_object → plain text. A server that refuses a
format — by a 400, a 422 or, like llama-cpp-python, a 500 whose body names the response format — is
asked again with the next one, and what worked is remembered per server and model (in the database
when the app gives a `ModeStore`). Retries (429, 5xx, connection errors) happen here rather than
inside the SDK so that the whole call, retries and waits included, stays within WEEKLY_LLM_TIMEOUT.
The answer is streamed so that closing the stream when the budget ends stops the server generating.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

import openai
from openai import OpenAI

from bot.config import Settings
from bot.summarize import ChatReply, ChatTimeout, ChatUnavailable, Summarizer, SummaryCache

logger = logging.getLogger(__name__)
if not os.environ.get("WEEKLY_DEBUG"):
    # the SDK logs each refused or retried request (at DEBUG, or at INFO/DEBUG with OPENAI_LOG set), and
    # httpx each request at INFO: weekly-bot says what matters once, in the summary's note
    for _name in ("openai", "httpx", "httpcore"):
        logging.getLogger(_name).setLevel(logging.WARNING)

Mode = Literal["json_schema", "json_object_schema", "json_object", "text"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object_schema", "json_object", "text")
ENFORCED: frozenset[Mode] = frozenset({"json_schema", "json_object_schema"})  # the server holds the answer to the schema
TEMPERATURE = 0.2
MAX_RETRIES = 2
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
SCHEMA_NAME = "weekly_summary"
# Words a server uses when it refuses a response_format (OpenAI, DeepSeek, vLLM, Ollama, Qwen, llama.cpp).
_FORMAT_REFUSALS = (
    "response_format", "response format", "json_schema", "json_object", "structured output",
    "unsupported", "not supported", "unavailable",
)
# A 5xx only counts as a refusal when its body names the format (llama-cpp-python: a 500 wrapping
# FastAPI's "Input should be 'text' or 'json_object'" for `response_format.type`).
_FORMAT_NAMED = ("response_format", "json_schema", "json_object")
_CONTEXT_OVERFLOW = ("context length", "context window", "context_length", "maximum context", "too many tokens",
                     "exceed context", "exceeds the context", "prompt is too long", "n_ctx")
_RETRY_STATUSES = (408, 409, 429)

_modes: dict[tuple[str, str], Mode] = {}  # (base URL, model) → the format that server accepted
_modes_lock = threading.Lock()


class ModeStore(Protocol):
    """Where the response format a server accepted is kept between runs (the database in the app)."""

    def get_mode(self, *, server: str, model: str) -> str | None: ...

    def put_mode(self, *, server: str, model: str, mode: str) -> None: ...


class OpenAIChat:
    """`ChatModel` over the openai SDK, configured from the environment (spec §3)."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_retries: int = MAX_RETRIES,
        backoff: float = INITIAL_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        modes: ModeStore | None = None,
    ) -> None:
        self.model = settings.weekly_llm_model
        self.modes = modes
        self.budget = settings.weekly_llm_timeout
        self.max_retries = max_retries
        self.backoff = backoff
        # The SDK's own retries are off (max_retries=0): each attempt gets what is left of the budget.
        self.client = OpenAI(
            api_key=settings.openai_api_key or "unused",
            base_url=settings.openai_base_url,
            timeout=self.budget,
            max_retries=0,
        )
        self._server = (str(self.client.base_url), self.model)
        self._sleep = sleep
        self._clock = clock

    def complete(self, *, system: str, user: str, schema: dict[str, Any], format_hint: str = "",
                 max_tokens: int | None = None) -> ChatReply:
        """One answer for a system and a user message; ChatUnavailable (or ChatTimeout) when none comes.
        `format_hint` describes the JSON wanted; it joins the system message only where the server
        does not enforce the schema, so an enforced call carries no example a small model could copy."""
        deadline = self._clock() + self.budget
        mode = self.mode()
        failures = 0
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ChatTimeout(f"timeout after {self.budget:g} s")
            call = _Call(self.client, self.model, system if mode in ENFORCED or not format_hint
                         else f"{system}\n\n{format_hint}", user, schema, mode, max_tokens, remaining)
            try:
                reply = _within(call.run, remaining, f"timeout after {self.budget:g} s", call.cancel)
            except openai.APITimeoutError as err:
                raise ChatTimeout(f"timeout after {self.budget:g} s") from err
            except openai.APIStatusError as err:
                fallback = _next_mode(mode) if _refuses_format(err) else None
                if fallback is not None:
                    logger.info("%s refused response_format %s (HTTP %s); trying %s", self._server[0], mode,
                                err.status_code, fallback)
                    mode = fallback
                    continue
                if _overflows_context(err):
                    raise ChatUnavailable(f"the prompt does not fit the model's context window, HTTP {err.status_code}; "
                                          "lower WEEKLY_LLM_MAX_INPUT_TOKENS") from err
                if err.status_code in (400, 404, 413, 422) or not _retryable(err):
                    logger.debug("chat request rejected: %s", err.message)
                    raise ChatUnavailable(f"request rejected, HTTP {err.status_code}") from err
                failures = self._wait_or_raise(err, failures, deadline)
                continue
            except openai.APIConnectionError as err:
                failures = self._wait_or_raise(err, failures, deadline)
                continue
            except openai.OpenAIError as err:
                raise ChatUnavailable(type(err).__name__) from err
            self._remember(mode)
            return reply

    def _wait_or_raise(self, err: openai.APIConnectionError | openai.APIStatusError, failures: int,
                       deadline: float) -> int:
        """Sleep before the next attempt, or raise ChatUnavailable when no attempt or time is left."""
        failures += 1
        if failures > self.max_retries:
            raise ChatUnavailable(f"{_describe(err)} after {failures} attempts") from err
        delay = _retry_after(err)
        delay = min(self.backoff * 2 ** (failures - 1), MAX_BACKOFF) if delay is None else delay
        if self._clock() + delay >= deadline:
            raise ChatUnavailable(f"{_describe(err)}; no time left to retry within {self.budget:g} s") from err
        logger.info("chat call failed (%s); retrying in %.1f s", _describe(err), delay)
        self._sleep(delay)
        return failures

    def mode(self) -> Mode:
        """The response format to try first with this server: what worked before, else json_schema."""
        with _modes_lock:
            known = _modes.get(self._server)
        if known is None and self.modes is not None:
            try:
                stored = self.modes.get_mode(server=self._server[0], model=self._server[1])
            except Exception:  # a broken store costs a refused attempt, never the summary
                logger.exception("LLM mode lookup failed")
                stored = None
            if stored in MODES:
                known = stored  # type: ignore[assignment]
                with _modes_lock:
                    _modes[self._server] = stored  # type: ignore[assignment]
        return known or "json_schema"

    def _remember(self, mode: Mode) -> None:
        with _modes_lock:
            if _modes.get(self._server) == mode:
                return
            _modes[self._server] = mode
        if self.modes is not None:
            try:
                self.modes.put_mode(server=self._server[0], model=self._server[1], mode=mode)
            except Exception:
                logger.exception("LLM mode store failed")


class _Call:
    """One streamed chat-completions request; `cancel()` closes the stream, which stops the server."""

    def __init__(self, client: OpenAI, model: str, system: str, user: str, schema: dict[str, Any], mode: Mode,
                 max_tokens: int | None, timeout: float) -> None:
        self.client, self.model, self.mode = client, model, mode
        self.messages: list[Any] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        self.schema, self.max_tokens, self.timeout = schema, max_tokens, timeout
        self._stream: Any = None
        self._cancelled = threading.Event()

    def kwargs(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"temperature": TEMPERATURE}
        if self.max_tokens:
            extra["max_tokens"] = self.max_tokens
        if self.mode == "json_schema":
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": SCHEMA_NAME, "schema": self.schema, "strict": True}}
        elif self.mode == "json_object_schema":
            extra["response_format"] = {"type": "json_object", "schema": self.schema}
        elif self.mode == "json_object":
            extra["response_format"] = {"type": "json_object"}
        return extra

    def run(self) -> ChatReply:
        stream = self.client.chat.completions.create(
            model=self.model, messages=self.messages, stream=True, stream_options={"include_usage": True},
            timeout=self.timeout, **self.kwargs(),
        )
        self._stream = stream
        if self._cancelled.is_set():
            stream.close()
            raise ChatTimeout("cancelled")
        parts: list[str] = []
        events = chunks = tokens_in = tokens_out = 0
        finish: str | None = None
        try:
            for chunk in stream:
                events += 1
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
                    tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
                for choice in getattr(chunk, "choices", None) or []:
                    content = getattr(getattr(choice, "delta", None), "content", None)
                    if isinstance(content, str) and content:
                        parts.append(content)
                        chunks += 1
                    finish = getattr(choice, "finish_reason", None) or finish
                if self._cancelled.is_set():
                    break
        finally:
            stream.close()
        if not events:
            raise ChatUnavailable("malformed response from the server")
        # a server that reports no usage in the stream sent one token per chunk (llama.cpp, vLLM)
        return ChatReply(text="".join(parts), tokens_in=tokens_in, tokens_out=tokens_out or chunks,
                         truncated=finish == "length")

    def cancel(self) -> None:
        """Stop reading and close the connection: the server sees the client gone and stops generating."""
        self._cancelled.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing from this thread while the other reads may race; the socket is gone
                logger.debug("closing the LLM stream", exc_info=True)


T = TypeVar("T")


def _within(call: Callable[[], T], seconds: float, why: str, cancel: Callable[[], None] | None = None) -> T:
    """`call()` or ChatTimeout after `seconds`: the HTTP client's timeout is per read, and a server that
    trickles its answer byte by byte would otherwise hold the report far past WEEKLY_LLM_TIMEOUT.
    `cancel()` then ends the call's request, so the server stops working on it too."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as e:  # handed to the caller's thread as is
            box["error"] = e
        finally:
            done.set()

    # a daemon thread: one abandoned to a slow server never holds the process open at exit
    threading.Thread(target=run, name="llm-call", daemon=True).start()
    if not done.wait(seconds):
        if cancel is not None:
            cancel()
        raise ChatTimeout(why)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def summarizer_from_settings(settings: Settings, *, cache: SummaryCache | None = None,
                             modes: ModeStore | None = None) -> Summarizer:
    """The Summarizer the app uses: the OpenAI-compatible model when configured, else offline only."""
    chat = OpenAIChat(settings, modes=modes) if settings.llm_enabled else None
    return Summarizer(
        chat, model=settings.weekly_llm_model, max_input_tokens=settings.weekly_llm_max_input_tokens,
        cache=cache, timeout=settings.weekly_llm_timeout,
    )


def forget_modes() -> None:
    """Forget which response formats servers accepted (tests start from json_schema)."""
    with _modes_lock:
        _modes.clear()


def _next_mode(mode: Mode) -> Mode | None:
    i = MODES.index(mode)
    return MODES[i + 1] if i + 1 < len(MODES) else None


def _refuses_format(err: openai.APIStatusError) -> bool:
    """Whether the server refused the response_format we sent (and not, say, the context length)."""
    text = f"{err.message} {err.body}".lower()
    if _overflows_context(err):
        return False
    if err.status_code in (400, 422):
        return any(word in text for word in _FORMAT_REFUSALS)
    return err.status_code >= 500 and any(word in text for word in _FORMAT_NAMED)


def _overflows_context(err: openai.APIStatusError) -> bool:
    """Whether the server says the prompt (with max_tokens) is longer than the model's context."""
    text = f"{err.message} {err.body}".lower()
    return any(word in text for word in _CONTEXT_OVERFLOW)


def _retryable(err: openai.APIConnectionError | openai.APIStatusError) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    return err.status_code in _RETRY_STATUSES or err.status_code >= 500


def _describe(err: openai.APIConnectionError | openai.APIStatusError) -> str:
    """A few words for the note: what kind of failure, never the server's text."""
    if isinstance(err, openai.APIConnectionError):
        return "connection error"
    if err.status_code == 429:
        return "HTTP 429 rate limit"
    if err.status_code >= 500:
        return f"HTTP {err.status_code} server error"
    return f"HTTP {err.status_code}"


def _retry_after(err: openai.APIConnectionError | openai.APIStatusError) -> float | None:
    """Seconds the server asked us to wait (Retry-After-Ms, Retry-After seconds or date), if any."""
    if not isinstance(err, openai.APIStatusError):
        return None
    headers = err.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def check_llm(settings: Settings) -> tuple[bool, str]:
    """Ask the OpenAI-compatible server for its models: reachable, and does it take the key?"""
    base = settings.openai_base_url or "https://api.openai.com/v1"
    client = openai.OpenAI(api_key=settings.openai_api_key or "unused", base_url=settings.openai_base_url,
                           timeout=min(settings.weekly_llm_timeout, 10.0), max_retries=0)
    try:
        client.models.list()
    except openai.AuthenticationError:
        return False, f"LLM: {base} refused the key (OPENAI_API_KEY)"
    except openai.APIStatusError as e:  # some compatible servers have no /models: reachable is enough
        return True, f"LLM: {base} answers (HTTP {e.status_code} for /models); model {settings.weekly_llm_model}"
    except openai.APIConnectionError as e:
        return False, f"LLM: cannot reach {base} ({type(e).__name__}); reports fall back to offline summaries"
    return True, f"LLM: {base} answers; model {settings.weekly_llm_model}"
