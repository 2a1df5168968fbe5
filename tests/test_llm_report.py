"""`weekly-bot report --summarize` end to end against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXAMPLES
from .fakes.openai_server import FakeOpenAI, Reply, answer, error

W40 = EXAMPLES / "report-2024-W40.md"
ANSWER = {
    "reflections": [
        {"text": "清算文件延迟35分钟暴露了批量任务缺少超时告警。", "sources": ["incidents"]},
        {"text": "误拦率降到0.12%，说明规则迭代有效。", "sources": ["risk", "hr"]},
    ],
    "next_week": [
        {"text": "招商银行直连10月下旬上线。", "sources": ["settlement"]},
        {"text": "商户进件自动化推进到99%。", "sources": ["o1_business"]},
    ],
}


def cli(tmp_path: Path, *args: str, base_url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**extra, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEEKLY_CONFIG": str(EXAMPLES / "team.yaml"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'weekly.db'}", "OPENAI_API_KEY": "sk-test",
           "OPENAI_BASE_URL": base_url, "WEEKLY_LLM_MODEL": "fake-model", "WEEKLY_LLM_TIMEOUT": "3"}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=60)


def test_report_uses_the_model_once_and_keeps_only_traceable_items(tmp_path: Path) -> None:
    with FakeOpenAI(answer(ANSWER, tokens_in=900, tokens_out=120)) as server:
        assert cli(tmp_path, "import", str(W40), base_url=server.base_url).returncode == 0
        first = cli(tmp_path, "report", "--cycle", "2024-W40", "--summarize", "--format", "json",
                    base_url=server.base_url)
        assert first.returncode == 0, first.stderr
        data = json.loads(first.stdout)
        assert data["summary_source"] == "llm"
        assert data["reflections"] == [{"text": "清算文件延迟35分钟暴露了批量任务缺少超时告警。", "sources": ["incidents"]}]
        assert data["next_week"] == [{"text": "招商银行直连10月下旬上线。", "sources": ["settlement"]}]
        assert "1. 清算文件延迟35分钟暴露了批量任务缺少超时告警。（来源：生产事件）" in data["markdown"]
        assert "900 tokens in, 120 out" in first.stderr
        assert len(server.requests) == 1
        system, user = server.requests[0]["messages"]
        assert system["role"] == "system" and "通道数据" not in system["content"]
        assert "本周处理交易3120笔" in user["content"]

        again = cli(tmp_path, "report", "--cycle", "2024-W40", "--summarize", base_url=server.base_url)
        assert again.returncode == 0
        assert len(server.requests) == 1  # cached in the database: no second call


def test_a_failing_model_still_gives_the_report_offline_with_one_line(tmp_path: Path) -> None:
    with FakeOpenAI(error(500, "upstream exploded")) as server:
        cli(tmp_path, "import", str(W40), base_url=server.base_url)
        result = cli(tmp_path, "report", "--cycle", "2024-W40", "--summarize", "--format", "json",
                     base_url=server.base_url)
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["summary_source"] == "offline"
    assert data["reflections"] and data["next_week"]
    assert result.stderr.splitlines()[0].startswith("weekly-bot: LLM unavailable (HTTP 500")
    assert result.stderr.splitlines()[0].endswith("offline summary used (rule-based draft)")


def test_check_asks_the_llm_server(tmp_path: Path) -> None:
    with FakeOpenAI(answer(ANSWER)) as server:
        ok = cli(tmp_path, "check", base_url=server.base_url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"ok  LLM: {server.base_url} answers" in ok.stdout
    down = cli(tmp_path, "check", base_url="http://127.0.0.1:9/v1")
    assert down.returncode == 1
    assert "FAIL LLM: cannot reach http://127.0.0.1:9/v1 (APIConnectionError)" in down.stdout


def test_a_llama_cpp_like_server_is_answered_on_the_first_report_and_stderr_holds_only_our_lines(
        tmp_path: Path) -> None:
    refusal = {"error": {"message": "1 validation error: ('body', 'response_format', 'type') Input should be "
                                    "'text' or 'json_object'", "type": "internal_server_error"}}

    def script(body: dict, _n: int) -> Reply:
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return Reply(status=500, body=refusal)
        if "schema" not in (body.get("response_format") or {}):
            return error(400, "expected the schema")
        return answer(ANSWER, tokens_in=900, tokens_out=120)

    with FakeOpenAI(script) as server:
        cli(tmp_path, "import", str(W40), base_url=server.base_url)
        first = cli(tmp_path, "report", "--cycle", "2024-W40", "--summarize", "--format", "json",
                    base_url=server.base_url, OPENAI_LOG="debug")  # the SDK's own logging asked for, even
        formats = [(b.get("response_format") or {}).get("type") for b in server.requests]
        cli(tmp_path, "import", str(EXAMPLES / "report-2024-W39.md"), base_url=server.base_url)
        second = cli(tmp_path, "report", "--cycle", "2024-W39", "--summarize", base_url=server.base_url)

    assert json.loads(first.stdout)["summary_source"] == "llm"
    assert formats == ["json_schema", "json_object"]  # one refusal, then the answer: no 500 loop
    # a new process starts from what the database remembers
    assert (server.requests[-1].get("response_format") or {}).get("type") == "json_object"
    assert len(server.requests) == 3
    for out in (first, second):
        assert all(line.startswith("weekly-bot:") for line in out.stderr.splitlines()), out.stderr
    assert "2 LLM item(s) kept, 2 dropped" in first.stderr
    assert len(first.stderr.splitlines()) == 3, first.stderr  # the summary line and one per dropped item, no SDK log


@pytest.mark.parametrize("where", ["content", "body"])
def test_a_100k_deep_json_answer_is_one_line_on_stderr_and_no_traceback(tmp_path: Path, where: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    reply = answer(deep) if where == "content" else Reply(body=deep, headers={"Content-Type": "application/json"})
    with FakeOpenAI(reply) as server:
        cli(tmp_path, "import", str(W40), base_url=server.base_url)
        result = cli(tmp_path, "report", "--cycle", "2024-W40", "--summarize", "--format", "json",
                     base_url=server.base_url)
    assert result.returncode == 0
    assert json.loads(result.stdout)["summary_source"] == "offline"
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and all(ln.startswith("weekly-bot: ") for ln in lines), lines
