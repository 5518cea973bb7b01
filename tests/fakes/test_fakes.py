"""Prove the test doubles are faithful to the real `claude` CLI.

Each real-CLI scenario (marked ``real_claude``: real CLI + ``FakeAnthropic``) is paired with the
equivalent ``fake_claude.py`` directive, and both outputs are reduced to the same structural
"shape" (line types, subtypes and content-block types in order; result keys; exit code). If the
real CLI changes its stream-json, these tests say exactly where the fake must follow.

The remaining tests cover fake-only behaviours that claudine's process handling relies on
(flood, grandchild processes, SIGTERM-ignoring agents, crashes).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_claude import reset_text

RUN_TIMEOUT = 60  # seconds; a real run takes ~0.5 s, so this only catches hangs
ROOT_REFUSAL = "cannot be used with root/sudo privileges for security reasons"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
STREAM_FLAGS = ["--output-format", "stream-json", "--verbose"]
SKIP_PERMS = ["--dangerously-skip-permissions"]


@dataclass
class Run:
    """A finished CLI run, stdout parsed into JSON lines (non-JSON lines kept apart)."""

    returncode: int
    lines: list[dict[str, Any]]
    stderr: str
    stdout: str
    bad_lines: list[str] = field(default_factory=list)

    @property
    def result(self) -> dict[str, Any]:
        results = [line for line in self.lines if line.get("type") == "result"]
        assert len(results) == 1, f"expected one result line, got {self.lines}"
        return results[0]

    @property
    def init(self) -> dict[str, Any]:
        return self.lines[0]

    def shape(self) -> list[tuple[str, str | None, str | None]]:
        """(type, subtype, first content-block type) per line: what claudine's parser sees."""
        out: list[tuple[str, str | None, str | None]] = []
        for line in self.lines:
            block = None
            content = (line.get("message") or {}).get("content")
            if isinstance(content, list) and content:
                block = content[0].get("type")
            out.append((line["type"], line.get("subtype"), block))
        return out

    def tool_uses(self) -> list[dict[str, Any]]:
        return [
            b
            for line in self.lines
            if line["type"] == "assistant"
            for b in line["message"]["content"]
            if b["type"] == "tool_use"
        ]


def run_cli(
    argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> Run:
    full_env = dict(os.environ)
    full_env.pop("IS_SANDBOX", None)  # each test states it explicitly
    full_env.update(env or {})
    if "CLAUDE_CODE_OAUTH_TOKEN" in full_env and "ANTHROPIC_API_KEY" not in (env or {}):
        full_env.pop("ANTHROPIC_API_KEY", None)  # a subscription run: the key would win
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines: list[dict[str, Any]] = []
    bad: list[str] = []
    for raw in proc.stdout.splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            bad.append(raw)
    return Run(proc.returncode, lines, proc.stderr, proc.stdout, bad)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    """Environment for fake_claude runs: sandbox flag + a config dir for session files."""
    config = tmp_path / "fake-config"
    config.mkdir()
    return {"IS_SANDBOX": "1", "CLAUDE_CONFIG_DIR": str(config)}


def claude(bin_: Path, prompt: str, cwd: Path, env: dict[str, str], *extra: str) -> Run:
    """Run a real or fake ``claude -p`` the way claudine does (stream-json, bypass perms)."""
    return run_cli([bin_, "-p", prompt, *STREAM_FLAGS, *SKIP_PERMS, *extra], cwd, env, RUN_TIMEOUT)


@dataclass
class Cli:
    """One ``claude``, real or fake, with its environment, run in the test's working
    directory: ``cli(prompt, *extra)`` runs it as claudine does; ``env=`` runs it with
    another environment instead (built from ``cli.env`` when it adds to it)."""

    bin: Path
    env: dict[str, str]
    cwd: Path

    def __call__(self, prompt: str, *extra: str, env: dict[str, str] | None = None) -> Run:
        return claude(self.bin, prompt, self.cwd, self.env if env is None else env, *extra)


@pytest.fixture
def real_cli(real_claude_bin: Path, real_claude_env: dict[str, str], workdir: Path) -> Cli:
    """The pinned real CLI, its model ``fake_api`` (through ``real_claude_env``)."""
    return Cli(real_claude_bin, real_claude_env, workdir)


@pytest.fixture
def fake_cli(fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path) -> Cli:
    """``fake_claude.py``, in the same working directory as ``real_cli``."""
    return Cli(fake_claude_bin, fake_env, workdir)


def assert_same_structure(real_run: Run, fake_run: Run) -> None:
    assert fake_run.returncode == real_run.returncode
    assert fake_run.shape() == real_run.shape()
    assert set(fake_run.result) == set(real_run.result)
    for key in ("type", "subtype", "is_error", "api_error_status", "terminal_reason"):
        assert fake_run.result.get(key) == real_run.result.get(key), key
    assert set(fake_run.init) == set(real_run.init)
    real_msgs = [line for line in real_run.lines if line["type"] in ("assistant", "user")]
    fake_msgs = [line for line in fake_run.lines if line["type"] in ("assistant", "user")]
    for r, f in zip(real_msgs, fake_msgs, strict=True):
        assert set(f) == set(r), (r, f)
        assert set(f["message"]) == set(r["message"]), (r["message"], f["message"])
    # One session id throughout, as claudine relies on it for --resume.
    sids = {line.get("session_id") for line in fake_run.lines}
    assert sids == {fake_run.init["session_id"]}


# --------------------------------------------------------------------------------------------
# Real CLI vs fake: same structure
# --------------------------------------------------------------------------------------------


@pytest.mark.real_claude
def test_text_task(real_cli: Cli, fake_cli: Cli, workdir: Path) -> None:
    r = real_cli("say hello please")
    assert r.returncode == 0, r.stderr
    assert r.result["subtype"] == "success" and r.result["is_error"] is False
    assert r.result["result"] == "FAKE_DONE: say hello please"
    assert r.init["cwd"] == str(workdir)
    assert r.init["permissionMode"] == "bypassPermissions"

    f = fake_cli("say hello please")
    assert f.result["result"] == r.result["result"]
    assert_same_structure(r, f)


@pytest.mark.real_claude
def test_bash_task_writes_file(
    real_cli: Cli, fake_cli: Cli, workdir: Path, fake_api: FakeAnthropic
) -> None:
    r = real_cli("BASH: echo hi-from-bash > out.txt && cat out.txt")
    assert r.returncode == 0, r.stderr
    assert (workdir / "out.txt").read_text().strip() == "hi-from-bash"
    assert [t["name"] for t in r.tool_uses()] == ["Bash"]
    results = [ln for ln in r.lines if ln["type"] == "user"]
    assert results[0]["message"]["content"][0]["type"] == "tool_result"
    assert results[0]["message"]["content"][0]["is_error"] is False
    assert r.result["result"] == "FAKE_DONE: hi-from-bash"
    assert r.result["num_turns"] == 2
    # The tool result really went back to the model in a second request.
    assert len(fake_api.message_requests()) == 2

    (workdir / "out.txt").unlink()
    f = fake_cli("[write:out.txt=hi-from-bash]")
    assert (workdir / "out.txt").read_text() == "hi-from-bash"
    assert f.result["num_turns"] == 2
    assert_same_structure(r, f)


@pytest.mark.real_claude
def test_api_error_529(real_cli: Cli, fake_cli: Cli, fake_api: FakeAnthropic) -> None:
    started = time.monotonic()
    r = real_cli("API_ERROR: 529")
    assert r.returncode == 1
    assert r.result["is_error"] is True
    assert r.result["api_error_status"] == 529
    assert r.result["subtype"] == "success"  # sic: API failures still say "success"
    assert r.lines[1]["message"]["model"] == "<synthetic>"
    # CLAUDE_CODE_MAX_RETRIES=0 is honoured: one request, no api_retry lines, fast.
    assert len(fake_api.message_requests()) == 1
    assert not [ln for ln in r.lines if ln.get("subtype") == "api_retry"]
    assert time.monotonic() - started < 15

    f = fake_cli("[api-error:529]")
    assert_same_structure(r, f)


@pytest.mark.real_claude
def test_api_retry_lines(real_cli: Cli, fake_cli: Cli) -> None:
    env = {**real_cli.env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    r = real_cli("API_ERROR: 529 times=1", env=env)
    assert r.returncode == 0, r.stderr
    retries = [ln for ln in r.lines if ln.get("subtype") == "api_retry"]
    assert len(retries) == 1 and retries[0]["error_status"] == 529

    f = fake_cli("[api-retry:1]", env={**fake_cli.env, "CLAUDE_CODE_MAX_RETRIES": "2"})
    assert f.shape() == r.shape()
    fake_retry = next(ln for ln in f.lines if ln.get("subtype") == "api_retry")
    assert set(fake_retry) == set(retries[0])


@pytest.mark.real_claude
def test_resume(real_cli: Cli, fake_cli: Cli, fake_api: FakeAnthropic) -> None:
    first = real_cli("first turn")
    sid = first.init["session_id"]
    second = real_cli("second turn", "--resume", sid)
    assert second.returncode == 0, second.stderr
    assert second.init["session_id"] == sid and second.result["session_id"] == sid
    assert second.result["result"] == "FAKE_DONE: second turn"
    # The resumed request carries the history of the first run.
    history = json.dumps(fake_api.message_requests()[-1]["messages"])
    assert "FAKE_DONE: first turn" in history

    f1 = fake_cli("first turn")
    fsid = f1.init["session_id"]
    f2 = fake_cli("second turn", "--resume", fsid)
    assert f2.init["session_id"] == fsid and f2.result["session_id"] == fsid
    assert f2.result["result"].startswith("RESUMED")
    assert_same_structure(second, f2)


@pytest.mark.real_claude
def test_resume_unknown_session(real_cli: Cli, fake_cli: Cli) -> None:
    bogus = "11111111-2222-3333-4444-555555555555"
    r = real_cli("hi", "--resume", bogus)
    f = fake_cli("hi", "--resume", bogus)
    for run in (r, f):
        assert run.returncode == 1
        assert run.result["subtype"] == "error_during_execution"
        assert "No conversation found" in run.stderr
    assert r.shape() == f.shape() == [("result", "error_during_execution", None)]
    assert set(f.result) == set(r.result)


@pytest.mark.real_claude
def test_max_turns(real_cli: Cli, fake_cli: Cli) -> None:
    r = real_cli("BASH: echo a\nBASH: echo b", "--max-turns", "1")
    assert r.returncode == 1
    assert r.result["subtype"] == "error_max_turns"
    f = fake_cli("[tool:Bash] [tool:Bash]", "--max-turns", "1")
    assert_same_structure(r, f)


@pytest.mark.real_claude
@pytest.mark.skipif(not IS_ROOT, reason="the root refusal only happens when running as root")
def test_root_refusal(real_cli: Cli, fake_cli: Cli) -> None:
    env = {k: v for k, v in real_cli.env.items() if k != "IS_SANDBOX"}
    r = real_cli("hi", env=env)
    f = fake_cli("hi", env={})
    for run in (r, f):
        assert run.returncode == 1
        assert run.stdout == ""
        assert ROOT_REFUSAL in run.stderr
    # With IS_SANDBOX=1 the fake goes ahead, like the real CLI (see test_text_task).
    assert fake_cli("hi", env={"IS_SANDBOX": "1"}).returncode == 0


@pytest.mark.real_claude
def test_fake_api_records_requests(real_cli: Cli, fake_api: FakeAnthropic) -> None:
    real_cli("hello")
    posts = [r for r in fake_api.requests if r["method"] == "POST"]
    assert posts and posts[0]["path"].startswith("/v1/messages")
    assert posts[0]["headers"].get("x-api-key") == "dummy"
    assert fake_api.message_requests()[0]["stream"] is True


# --------------------------------------------------------------------------------------------
# FakeAnthropic on its own (no CLI needed)
# --------------------------------------------------------------------------------------------


def test_fake_api_scripts_tool_then_done(fake_api: FakeAnthropic) -> None:
    prompt = 'TOOL: mcp__claudine__DelegateTask {"prompt": "hello"}'
    first = fake_api.plan_reply({"messages": [{"role": "user", "content": prompt}]})
    assert first[1]["name"] == "mcp__claudine__DelegateTask"
    assert first[1]["input"] == {"prompt": "hello"}
    history = [
        {"role": "user", "content": [{"type": "text", "text": prompt}]},
        {"role": "assistant", "content": first},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": first[1]["id"], "content": "task 7"}
            ],
        },
    ]
    assert fake_api.plan_reply({"messages": history}) == [
        {"type": "text", "text": "FAKE_DONE: task 7"}
    ]


def test_fake_api_standalone_prints_url(tmp_path: Path) -> None:
    script = Path(__file__).with_name("fake_anthropic.py")
    proc = subprocess.Popen(
        ["python3", str(script), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/v1/models", timeout=10) as resp:
            assert json.load(resp)["data"][0]["type"] == "model"
    finally:
        proc.kill()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# fake_claude.py behaviours
# --------------------------------------------------------------------------------------------


def test_fake_version(fake_claude_bin: Path, workdir: Path) -> None:
    out = subprocess.run(
        [fake_claude_bin, "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    assert out.strip() == "2.1.197 (Claude Code)"


def test_fake_logs_invocation_and_env(fake_cli: Cli, workdir: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    env = {**fake_cli.env, "FAKE_CLAUDE_LOG": str(log), "MY_VAR": "xyz"}
    run = fake_cli(
        "[env:MY_VAR] [env:NOPE_NOT_SET]", "--model", "claude-sonnet-4-5", "--allowedTools", "Bash",
        "Write", "--max-turns", "5", "--unknown-flag", env=env,
    )
    assert run.returncode == 0, run.stderr
    texts = [ln["message"]["content"][0]["text"] for ln in run.lines if ln["type"] == "assistant"]
    assert texts[:2] == ["ENV MY_VAR=xyz", "ENV NOPE_NOT_SET=<unset>"]
    assert run.init["model"] == "claude-sonnet-4-5"
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["cwd"] == str(workdir)
    assert entry["argv"][entry["argv"].index("--allowedTools") + 1] == "Bash"
    assert "--unknown-flag" in entry["argv"]


def test_fake_session_id_flag(fake_cli: Cli):
    sid = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    run = fake_cli("hi", "--session-id", sid)
    assert run.init["session_id"] == sid == run.result["session_id"]


def test_fake_failure_modes(fake_cli: Cli):
    crash = fake_cli("[crash]")
    assert crash.returncode == 3 and crash.stderr
    assert crash.lines and not [ln for ln in crash.lines if ln["type"] == "result"]

    now = fake_cli("[exit-now]")
    assert now.returncode == 2 and now.stdout == "" and now.stderr

    segv = fake_cli("[segv]")
    assert segv.returncode == -signal.SIGSEGV
    assert segv.shape() == [("system", "init", None)]

    refusal = fake_cli("[as-root-refusal]")
    assert refusal.returncode == 1 and refusal.stdout == "" and ROOT_REFUSAL in refusal.stderr

    failed = fake_cli("[fail]")
    assert failed.returncode == 1 and failed.result["api_error_status"] == 400

    tool_err = fake_cli("[tool-error:Bash]")
    assert tool_err.returncode == 0
    user = next(ln for ln in tool_err.lines if ln["type"] == "user")
    assert user["message"]["content"][0]["is_error"] is True


def test_fake_invalid_json(fake_cli: Cli):
    run = fake_cli("[invalid-json:3]")
    assert run.returncode == 0
    assert len(run.bad_lines) == 4  # 3 plain-text lines + 1 truncated JSON line
    assert run.result["is_error"] is False


def test_fake_flood(fake_cli: Cli) -> None:
    started = time.monotonic()
    run = fake_cli("[flood:4]")
    elapsed = time.monotonic() - started
    assert run.returncode == 0
    assert len(run.stdout) >= 4 * 1024 * 1024
    floods = [ln for ln in run.lines if ln.get("message", {}).get("id", "").startswith("msg_flood")]
    assert len(floods) > 3000
    assert not run.bad_lines
    assert run.lines[-1]["type"] == "result"
    assert elapsed < 20


def _start(cli: Cli, prompt: str) -> subprocess.Popen[str]:
    """Start ``cli`` in its own process group, as claudine starts agents."""
    return subprocess.Popen(
        [str(cli.bin), "-p", prompt, *STREAM_FLAGS, *SKIP_PERMS],
        cwd=cli.cwd,
        env={**os.environ, **cli.env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def _read_until_text(proc: subprocess.Popen[str], text: str) -> None:
    """Block until an assistant line with ``text`` arrives (an event, not a fixed sleep).

    The pytest-timeout (300 s) guards against a never-arriving line."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        if text in raw:
            return
    raise AssertionError(f"stdout closed before {text!r}")


def _gone(pid: int, timeout: float) -> bool:
    """True once ``pid`` is dead or a zombie (reparented orphans may wait to be reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; their groups are killed afterwards whatever happens."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_fake_grandchild_dies_with_group(
    fake_cli: Cli, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    own_pid_file = tmp_path / "own.pid"
    prompt = f"[pid-file:{own_pid_file}] [grandchild:{pid_file}] [text:ready] [hang]"
    proc = _start(fake_cli, prompt)
    procs.append(proc)
    _read_until_text(proc, "ready")
    assert int(own_pid_file.read_text()) == proc.pid
    grandchild = int(pid_file.read_text())
    assert psutil.Process(grandchild).ppid() == proc.pid
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    assert _gone(grandchild, timeout=10)


def test_fake_ignore_sigterm_needs_sigkill(
    fake_cli: Cli, procs: list[subprocess.Popen[str]]
) -> None:
    proc = _start(fake_cli, "[ignore-sigterm] [text:ready] [hang]")
    procs.append(proc)
    _read_until_text(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_fake_sleep_emits_bash_tool(fake_cli: Cli) -> None:
    run = fake_cli("[sleep:0.2]")
    assert run.returncode == 0
    assert run.tool_uses()[0]["input"]["command"] == "sleep 0.2"
    assert run.shape() == [
        ("system", "init", None),
        ("assistant", None, "text"),
        ("assistant", None, "tool_use"),
        ("user", None, "tool_result"),
        ("assistant", None, "text"),
        ("result", "success", None),
    ]


# --------------------------------------------------------------------------------------------
# Usage limits, rate limits and budgets (docs/claude-usage-limits.md)
# --------------------------------------------------------------------------------------------

SESSION_LIMIT_TEXT = "You've hit your session limit \u00b7 resets "
RATE_LIMIT_TEXT = "API Error: Request rejected (429) \u00b7 "


def lines_of(run: Run, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
    return [ln for ln in run.lines if ln["type"] == kind and ln.get("subtype") == subtype]


def assistant_text(line: dict[str, Any]) -> str:
    return str(line["message"]["content"][0]["text"])


def assert_same_limit_lines(real_run: Run, fake_run: Run) -> None:
    """The limit-specific lines carry the same keys (and the same ``error`` kind)."""
    for kind, subtype in (("rate_limit_event", None), ("system", "api_retry")):
        real_lines = lines_of(real_run, kind, subtype)
        for r, f in zip(real_lines, lines_of(fake_run, kind, subtype), strict=True):
            assert set(f) == set(r), (r, f)
            if kind == "rate_limit_event":
                assert set(f["rate_limit_info"]) == set(r["rate_limit_info"])
            else:
                assert f["error"] == r["error"] and f["error_status"] == r["error_status"]
    real_error = [ln.get("error") for ln in real_run.lines if ln["type"] == "assistant"]
    fake_error = [ln.get("error") for ln in fake_run.lines if ln["type"] == "assistant"]
    assert fake_error == real_error


@pytest.mark.real_claude
def test_usage_limit_with_subscription(
    real_cli: Cli,
    fake_cli: Cli,
    real_claude_subscription_env: dict[str, str],
    fake_api: FakeAnthropic,
) -> None:
    env = {**real_claude_subscription_env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    r = real_cli("USAGE_LIMIT: 3600 first task", env=env)
    assert r.returncode == 1
    (event,) = lines_of(r, "rate_limit_event")
    armed_at = fake_api.requests[-1]["time"]
    info = event["rate_limit_info"]
    assert info["status"] == "rejected" and info["rateLimitType"] == "five_hour"
    assert info["resetsAt"] == math.ceil(armed_at + 3600)
    # The subscription's limit is never retried, whatever CLAUDE_CODE_MAX_RETRIES allows.
    assert not lines_of(r, "system", "api_retry")
    assert len(fake_api.message_requests()) == 1
    (synthetic,) = [ln for ln in r.lines if ln["type"] == "assistant"]
    assert synthetic["message"]["model"] == "<synthetic>" and synthetic["error"] == "rate_limit"
    assert assistant_text(synthetic) == SESSION_LIMIT_TEXT + reset_text(info["resetsAt"])
    assert r.result["result"] == assistant_text(synthetic)
    assert r.result["is_error"] is True and r.result["api_error_status"] == 429
    assert r.result["subtype"] == "success" and r.result["total_cost_usd"] == 0

    # The limit is the account's: another task, and the first one resumed, hit it too.
    other = real_cli("another task", env=env)
    assert other.returncode == 1 and other.result["result"] == r.result["result"]
    sid = r.init["session_id"]
    resumed = real_cli("go on", "--resume", sid, env=env)
    assert resumed.returncode == 1 and lines_of(resumed, "rate_limit_event")

    # With an API key the CLI ignores the unified headers: a plain 429, no rate_limit_event.
    keyed = real_cli("keyed task")
    assert keyed.returncode == 1 and not lines_of(keyed, "rate_limit_event")
    assert keyed.result["result"].startswith(RATE_LIMIT_TEXT)

    # After the reset the session goes on; repeating the directive's prompt does not re-arm.
    fake_api.clear_limit()
    again = real_cli("go on", "--resume", sid, env=env)
    assert again.returncode == 0, again.stdout
    # The refused prompts stay in the conversation (the CLI merges the two "go on" turns
    # into one user message); the synthetic limit message is not sent to the API.
    assert again.result["result"] == "FAKE_DONE: go on\n\ngo on"
    history = json.dumps(fake_api.message_requests()[-1]["messages"], ensure_ascii=False)
    assert "USAGE_LIMIT: 3600 first task" in history and SESSION_LIMIT_TEXT not in history
    assert real_cli("USAGE_LIMIT: 3600 first task", env=env).returncode == 0

    f = fake_cli(
        "[usage-limit:3600] first task",
        env={**fake_cli.env, "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-dummy"},
    )
    assert_same_structure(r, f)
    assert_same_limit_lines(r, f)
    assert f.init["apiKeySource"] == r.init["apiKeySource"] == "none"
    assert f.result["result"].startswith(SESSION_LIMIT_TEXT)


@pytest.mark.real_claude
def test_usage_warning_is_not_a_limit(
    real_cli: Cli,
    fake_cli: Cli,
    real_claude_subscription_env: dict[str, str],
    fake_api: FakeAnthropic,
) -> None:
    r = real_cli("USAGE_WARNING: 0.95 hello", env=real_claude_subscription_env)
    assert r.returncode == 0 and r.result["is_error"] is False
    (event,) = lines_of(r, "rate_limit_event")
    assert event["rate_limit_info"] == {
        "status": "allowed_warning",
        "resetsAt": fake_api.warning_reset,
        "rateLimitType": "five_hour",
        "utilization": 0.95,
        "isUsingOverage": False,
        "surpassedThreshold": 0.9,
    }
    f = fake_cli("[usage-warning:0.95] hello")
    assert_same_structure(r, f)
    assert_same_limit_lines(r, f)
    assert f.lines[2]["rate_limit_info"]["status"] == "allowed_warning"


@pytest.mark.real_claude
def test_usage_limit_in_stream_json_mode_waits_for_stdin(
    real_cli: Cli,
    fake_cli: Cli,
    real_claude_subscription_env: dict[str, str],
    workdir: Path,
    procs: list[subprocess.Popen[str]],
) -> None:
    """As claudine runs agents: the limit ends the turn with its result, the CLI then waits
    for more input, and exits 1 when the wrapper closes stdin."""
    runs = [
        (real_cli.bin, "USAGE_LIMIT: 600 streamed", real_claude_subscription_env),
        (fake_cli.bin, "[usage-limit:600] streamed", fake_cli.env),
    ]
    for bin_, prompt, env in runs:
        full_env = {**os.environ, **env}
        full_env.pop("ANTHROPIC_API_KEY", None)
        proc = subprocess.Popen(
            [str(bin_), "-p", "--input-format", "stream-json", *STREAM_FLAGS, *SKIP_PERMS],
            cwd=workdir,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        procs.append(proc)
        assert proc.stdin is not None and proc.stdout is not None
        turn = {"type": "user", "message": {"role": "user", "content": prompt}}
        proc.stdin.write(json.dumps(turn) + "\n")
        proc.stdin.flush()
        _read_until_text(proc, '"type":"result"')
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1)  # still there, waiting for the next line
        proc.stdin.close()
        assert proc.wait(timeout=RUN_TIMEOUT) == 1, bin_


@pytest.mark.real_claude
def test_rate_limit_with_api_key_outlasting_retries(
    real_cli: Cli, fake_cli: Cli, fake_api: FakeAnthropic
) -> None:
    env = {**real_cli.env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    # retry-after above 60 s: the CLI gives up at once, without an api_retry line.
    r = real_cli("RATE_LIMIT: 3600", env=env)
    assert r.returncode == 1
    assert not lines_of(r, "system", "api_retry") and not lines_of(r, "rate_limit_event")
    assert len(fake_api.message_requests()) == 1
    assert r.result["api_error_status"] == 429 and r.result["is_error"] is True
    assert r.result["result"].startswith(RATE_LIMIT_TEXT)
    f = fake_cli("[rate-limit:3600]", env={**fake_cli.env, **env})
    assert_same_structure(r, f)
    assert_same_limit_lines(r, f)

    # A 429 on every request with a short retry-after: one api_retry line per retry.
    fake_api.clear_limit()
    r = real_cli("API_ERROR: 429", env=env)
    assert r.returncode == 1
    assert [ln["attempt"] for ln in lines_of(r, "system", "api_retry")] == [1, 2]
    assert r.result["result"].startswith(RATE_LIMIT_TEXT)
    f = fake_cli("[rate-limit:1]", env={**fake_cli.env, **env})
    assert_same_structure(r, f)
    assert_same_limit_lines(r, f)
    assert [ln["retry_delay_ms"] for ln in lines_of(f, "system", "api_retry")] == [1000, 1000]


@pytest.mark.real_claude
def test_rate_limit_within_retries_is_waited_out(
    real_cli: Cli, fake_cli: Cli, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    env = {**real_cli.env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    r = real_cli("RATE_LIMIT: 2 then answer", env=env)
    assert r.returncode == 0, r.stdout
    (retry,) = lines_of(r, "system", "api_retry")
    assert retry["retry_delay_ms"] == 2000 and retry["error"] == "rate_limit"
    first, second = [q for q in fake_api.requests if q["method"] == "POST"]
    assert second["time"] - first["time"] >= 1.5  # it really waited for the retry-after

    limit_file = tmp_path / "limit.json"
    limit_file.write_text(json.dumps({"until": time.time() + 2, "kind": "rate"}))
    f = fake_cli(
        "then answer", env={**fake_cli.env, **env, "FAKE_CLAUDE_LIMIT_FILE": str(limit_file)},
    )  # fmt: skip
    assert_same_structure(r, f)
    assert_same_limit_lines(r, f)


@pytest.mark.real_claude
def test_max_budget(real_cli: Cli, fake_cli: Cli, workdir: Path) -> None:
    # Checked after each model turn: a 2-turn task with a budget between the turns' costs
    # finishes its answer, then reports the budget (cost above it).
    r = real_cli("BASH: echo a", "--max-budget-usd", "0.01")
    assert r.returncode == 1
    assert r.result["subtype"] == "error_max_budget_usd" and r.result["is_error"] is True
    assert r.result["errors"] == ["Reached maximum budget ($0.01)"]
    assert r.result["num_turns"] == 2 and r.result["total_cost_usd"] >= 0.01
    f = fake_cli("[tool:Bash]", "--max-budget-usd", "0.01")
    assert_same_structure(r, f)
    assert f.result["errors"] == r.result["errors"]

    # Reached by the first turn, which asked for a tool: the tool never runs.
    r = real_cli("BASH: touch ran.txt", "--max-budget-usd", "0.005")
    assert r.returncode == 1 and r.result["subtype"] == "error_max_budget_usd"
    assert r.result["stop_reason"] == "tool_use" and r.result["num_turns"] == 1
    assert not (workdir / "ran.txt").exists()
    f = fake_cli("[write:ran.txt=x]", "--max-budget-usd", "0.005")
    assert_same_structure(r, f)
    assert not (workdir / "ran.txt").exists()


@pytest.mark.real_claude
def test_fallback_model_on_overload(real_cli: Cli, fake_cli: Cli, fake_api: FakeAnthropic) -> None:
    env = {**real_cli.env, "CLAUDE_CODE_MAX_RETRIES": "3"}
    r = real_cli(
        "API_ERROR: 529 times=3", "--model", "claude-opus-4-8", "--fallback-model",
        "claude-haiku-4-5", env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout
    (switch,) = lines_of(r, "system", "model_fallback")
    assert switch["trigger"] == "overloaded"
    assert (switch["original_model"], switch["fallback_model"]) == (
        "claude-opus-4-8",
        "claude-haiku-4-5",
    )
    models = [body["model"] for body in fake_api.message_requests()]
    assert models == ["claude-opus-4-8"] * 3 + ["claude-haiku-4-5"]
    assert r.lines[-2]["message"]["model"] == "claude-haiku-4-5"

    f = fake_cli(
        "[overloaded]", "--model", "claude-opus-4-8", "--fallback-model", "claude-haiku-4-5",
        env={**fake_cli.env, **env},
    )  # fmt: skip
    assert_same_structure(r, f)
    (fake_switch,) = lines_of(f, "system", "model_fallback")
    assert set(fake_switch) == set(switch)
    assert fake_switch["original_model"] == switch["original_model"]
    assert f.lines[-2]["message"]["model"] == "claude-haiku-4-5"


# -- the fakes on their own -------------------------------------------------------------------


def _post_message(api: FakeAnthropic, prompt: str) -> tuple[int, dict[str, str]]:
    body = json.dumps(
        {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": prompt}]}
    ).encode()
    request = urllib.request.Request(f"{api.url}/v1/messages", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers.items())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items())


def test_fake_api_limits_are_server_wide_until_reset(fake_api: FakeAnthropic) -> None:
    status, headers = _post_message(fake_api, "RATE_LIMIT: 30")
    armed_at = fake_api.requests[-1]["time"]
    assert status == 429 and 29 <= int(headers["retry-after"]) <= 30
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(armed_at + 30)))
    assert headers["anthropic-ratelimit-requests-reset"] == reset
    assert headers["anthropic-ratelimit-tokens-remaining"] == "0"
    assert "anthropic-ratelimit-unified-status" not in headers
    assert _post_message(fake_api, "any other prompt")[0] == 429

    fake_api.limit_until(time.time() + 100, kind="usage")
    status, headers = _post_message(fake_api, "hello")
    assert status == 429 and headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert headers["anthropic-ratelimit-unified-representative-claim"] == "five_hour"
    assert int(headers["anthropic-ratelimit-unified-reset"]) == math.ceil(
        fake_api.current_limit().until  # type: ignore[union-attr]
    )

    fake_api.clear_limit()
    assert _post_message(fake_api, "hello")[0] == 200
    # The directive's prompt seen again does not re-arm the limit.
    assert _post_message(fake_api, "RATE_LIMIT: 30")[0] == 200
    fake_api.limit_until(time.time() - 1)  # a reset in the past limits nothing
    assert _post_message(fake_api, "hello")[0] == 200


def test_fake_usage_limit_file_is_account_wide(fake_cli: Cli, tmp_path: Path) -> None:
    limit_file = tmp_path / "limit.json"
    env = {**fake_cli.env, "FAKE_CLAUDE_LIMIT_FILE": str(limit_file)}
    first = fake_cli("[usage-limit:3] [tool:Bash] first", env=env)
    assert first.returncode == 1 and not first.tool_uses()  # limited before any tool
    limit = json.loads(limit_file.read_text())
    assert limit["kind"] == "usage"
    reset = first.lines[1]["rate_limit_info"]["resetsAt"]
    assert reset == math.ceil(limit["until"])
    assert first.result["result"] == SESSION_LIMIT_TEXT + reset_text(reset)

    other = fake_cli("[tool:Bash] other", env=env)
    assert other.returncode == 1 and not other.tool_uses()
    assert other.result["result"] == first.result["result"]
    sid = first.init["session_id"]
    assert fake_cli("go on", "--resume", sid, env=env).returncode == 1

    deadline = time.monotonic() + 30
    while time.time() < limit["until"] and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for the reset time itself, the event under test
    resumed = fake_cli("go on", "--resume", sid, env=env)
    assert resumed.returncode == 0 and resumed.result["result"].startswith("RESUMED")
    again = fake_cli("[usage-limit:3] [tool:Bash] first", env=env)
    assert again.returncode == 0 and again.tool_uses()  # the directive armed it once only


def test_fake_rate_limit_without_retries(fake_cli: Cli) -> None:
    run = fake_cli("[rate-limit:5]", env={**fake_cli.env, "CLAUDE_CODE_MAX_RETRIES": "0"})
    assert run.returncode == 1 and not lines_of(run, "system", "api_retry")
    assert run.result["api_error_status"] == 429


def test_fake_cost_and_budget(fake_cli: Cli) -> None:
    cheap = fake_cli("[cost:0.5] [tool:Bash] [tool:Bash]")
    assert cheap.returncode == 0 and cheap.result["total_cost_usd"] == 1.5
    stopped = fake_cli("[cost:0.5] [tool:Bash] [tool:Bash]", "--max-budget-usd", "1")
    assert stopped.returncode == 1 and stopped.result["subtype"] == "error_max_budget_usd"
    assert stopped.result["total_cost_usd"] == 1.0 and stopped.result["num_turns"] == 2
    assert stopped.result["errors"] == ["Reached maximum budget ($1)"]
    assert len(stopped.tool_uses()) == 2 and len(lines_of(stopped, "user")) == 1


def test_fake_stream_json_reads_on_after_an_error_turn(
    fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path
) -> None:
    turns = "".join(
        json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n"
        for text in ("[fail]", "second")
    )
    proc = subprocess.run(
        [fake_claude_bin, "-p", "--input-format", "stream-json", *STREAM_FLAGS, *SKIP_PERMS],
        cwd=workdir, env={**os.environ, **fake_env}, input=turns, capture_output=True,
        text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    results = [json.loads(ln) for ln in proc.stdout.splitlines() if '"type":"result"' in ln]
    assert [r["is_error"] for r in results] == [True, False]
    assert results[1]["result"] == "FAKE_DONE: second"
    assert results[1]["total_cost_usd"] == 0.009  # the running total of the process
    assert proc.returncode == 0  # the last turn's status
