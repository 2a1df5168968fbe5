"""The openai SDK edge: one chat-completions call to any OpenAI-compatible server, within a time budget.

Structured output is tried in the order json_schema → json_object → plain text; a server that
rejects a format with a 400 is asked again with the next one, and what worked is remembered for
the rest of the process. Retries (429, 5xx, connection errors) happen here rather than inside
the SDK so that the whole call, retries and waits included, stays within WEEKLY_LLM_TIMEOUT.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

import openai
from openai import OpenAI
from openai.types.chat import ChatCompletion

from bot.config import Settings
from bot.summarize import ChatReply, ChatTimeout, ChatUnavailable, Summarizer, SummaryCache

logger = logging.getLogger(__name__)

Mode = Literal["json_schema", "json_object", "text"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "text")
MAX_RETRIES = 2
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
SCHEMA_NAME = "weekly_summary"
# Words a server uses when it refuses a response_format (OpenAI, DeepSeek, vLLM, Ollama, Qwen).
_FORMAT_REFUSALS = (
    "response_format", "response format", "json_schema", "json_object", "structured output",
    "unsupported", "not supported", "unavailable",
)
_RETRY_STATUSES = (408, 409, 429)

_modes: dict[tuple[str, str], Mode] = {}  # (base URL, model) → the format that server accepted
_modes_lock = threading.Lock()


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
    ) -> None:
        self.model = settings.weekly_llm_model
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

    def complete(self, *, system: str, user: str, schema: dict[str, Any]) -> ChatReply:
        """One answer for a system and a user message; ChatUnavailable (or ChatTimeout) when none comes."""
        deadline = self._clock() + self.budget
        mode = self.mode()
        failures = 0
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ChatTimeout(f"timeout after {self.budget:g} s")
            try:
                completion = _within(partial(self._create, system, user, schema, mode, remaining), remaining,
                                     f"timeout after {self.budget:g} s")
            except openai.APITimeoutError as err:
                raise ChatTimeout(f"timeout after {self.budget:g} s") from err
            except (openai.BadRequestError, openai.UnprocessableEntityError) as err:
                fallback = _next_mode(mode) if _refuses_format(err) else None
                if fallback is None:
                    logger.debug("chat request rejected: %s", err.message)
                    raise ChatUnavailable(f"request rejected, HTTP {err.status_code}") from err
                logger.info("%s refused response_format %s; trying %s", self._server[0], mode, fallback)
                mode = fallback
                continue
            except (openai.APIConnectionError, openai.APIStatusError) as err:
                if not _retryable(err):
                    raise ChatUnavailable(_describe(err)) from err
                failures += 1
                if failures > self.max_retries:
                    raise ChatUnavailable(f"{_describe(err)} after {failures} attempts") from err
                delay = _retry_after(err)
                delay = min(self.backoff * 2 ** (failures - 1), MAX_BACKOFF) if delay is None else delay
                if self._clock() + delay >= deadline:
                    raise ChatUnavailable(f"{_describe(err)}; no time left to retry within {self.budget:g} s") from err
                logger.info("chat call failed (%s); retrying in %.1f s", _describe(err), delay)
                self._sleep(delay)
                continue
            except openai.OpenAIError as err:
                raise ChatUnavailable(type(err).__name__) from err
            self._remember(mode)
            return _reply(completion)

    def mode(self) -> Mode:
        """The response format to try first with this server: what worked before, else json_schema."""
        with _modes_lock:
            return _modes.get(self._server, "json_schema")

    def _remember(self, mode: Mode) -> None:
        with _modes_lock:
            _modes[self._server] = mode

    def _create(self, system: str, user: str, schema: dict[str, Any], mode: Mode, timeout: float) -> ChatCompletion:
        messages: list[Any] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if mode == "json_schema":
            fmt: Any = {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True}}
            return self.client.chat.completions.create(
                model=self.model, messages=messages, response_format=fmt, timeout=timeout
            )
        if mode == "json_object":
            return self.client.chat.completions.create(
                model=self.model, messages=messages, response_format={"type": "json_object"}, timeout=timeout
            )
        return self.client.chat.completions.create(model=self.model, messages=messages, timeout=timeout)


T = TypeVar("T")


def _within(call: Callable[[], T], seconds: float, why: str) -> T:
    """`call()` or ChatTimeout after `seconds`: the HTTP client's timeout is per read, and a server that
    trickles its answer byte by byte would otherwise hold the report far past WEEKLY_LLM_TIMEOUT."""
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
        raise ChatTimeout(why)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def summarizer_from_settings(settings: Settings, *, cache: SummaryCache | None = None) -> Summarizer:
    """The Summarizer the app uses: the OpenAI-compatible model when configured, else offline only."""
    chat = OpenAIChat(settings) if settings.llm_enabled else None
    return Summarizer(
        chat, model=settings.weekly_llm_model, max_input_tokens=settings.weekly_llm_max_input_tokens,
        cache=cache, timeout=settings.weekly_llm_timeout,
    )


def forget_modes() -> None:
    """Forget which response formats servers accepted (tests start from json_schema)."""
    with _modes_lock:
        _modes.clear()


def _reply(completion: object) -> ChatReply:
    """The answer's text and token counts; a body that is not a chat completion is the server's fault."""
    # The SDK builds responses without validating them, so a strange body shows up here, not as an error.
    choices = getattr(completion, "choices", None) if isinstance(completion, ChatCompletion) else None
    message = getattr(choices[0], "message", None) if choices else None
    if message is None:
        raise ChatUnavailable("malformed response from the server")
    content = getattr(message, "content", None)
    usage = getattr(completion, "usage", None)
    return ChatReply(
        text=content if isinstance(content, str) else "",
        tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
        tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def _next_mode(mode: Mode) -> Mode | None:
    i = MODES.index(mode)
    return MODES[i + 1] if i + 1 < len(MODES) else None


def _refuses_format(err: openai.APIStatusError) -> bool:
    """Whether a 400/422 is about the response_format we sent (and not, say, the context length)."""
    text = f"{err.message} {err.body}".lower()
    return any(word in text for word in _FORMAT_REFUSALS)


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
