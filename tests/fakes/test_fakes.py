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
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from fakes.fake_anthropic import FakeAnthropic

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


# Two names for the same call keep the paired real/fake steps easy to read.
real = fake = claude


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
def test_text_task(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
) -> None:
    r = real(real_claude_bin, "say hello please", workdir, real_claude_env)
    assert r.returncode == 0, r.stderr
    assert r.result["subtype"] == "success" and r.result["is_error"] is False
    assert r.result["result"] == "FAKE_DONE: say hello please"
    assert r.init["cwd"] == str(workdir)
    assert r.init["permissionMode"] == "bypassPermissions"

    f = fake(fake_claude_bin, "say hello please", workdir, fake_env)
    assert f.result["result"] == r.result["result"]
    assert_same_structure(r, f)


@pytest.mark.real_claude
def test_bash_task_writes_file(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
    fake_api: FakeAnthropic,
) -> None:
    r = real(
        real_claude_bin,
        "BASH: echo hi-from-bash > out.txt && cat out.txt",
        workdir,
        real_claude_env,
    )
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
    f = fake(fake_claude_bin, "[write:out.txt=hi-from-bash]", workdir, fake_env)
    assert (workdir / "out.txt").read_text() == "hi-from-bash"
    assert f.result["num_turns"] == 2
    assert_same_structure(r, f)


@pytest.mark.real_claude
def test_api_error_529(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
    fake_api: FakeAnthropic,
) -> None:
    started = time.monotonic()
    r = real(real_claude_bin, "API_ERROR: 529", workdir, real_claude_env)
    assert r.returncode == 1
    assert r.result["is_error"] is True
    assert r.result["api_error_status"] == 529
    assert r.result["subtype"] == "success"  # sic: API failures still say "success"
    assert r.lines[1]["message"]["model"] == "<synthetic>"
    # CLAUDE_CODE_MAX_RETRIES=0 is honoured: one request, no api_retry lines, fast.
    assert len(fake_api.message_requests()) == 1
    assert not [ln for ln in r.lines if ln.get("subtype") == "api_retry"]
    assert time.monotonic() - started < 15

    f = fake(fake_claude_bin, "[api-error:529]", workdir, fake_env)
    assert_same_structure(r, f)


@pytest.mark.real_claude
def test_api_retry_lines(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
) -> None:
    env = {**real_claude_env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    r = real(real_claude_bin, "API_ERROR: 529 times=1", workdir, env)
    assert r.returncode == 0, r.stderr
    retries = [ln for ln in r.lines if ln.get("subtype") == "api_retry"]
    assert len(retries) == 1 and retries[0]["error_status"] == 529

    f = fake(
        fake_claude_bin, "[api-retry:1]", workdir, {**fake_env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    )
    assert f.shape() == r.shape()
    fake_retry = next(ln for ln in f.lines if ln.get("subtype") == "api_retry")
    assert set(fake_retry) == set(retries[0])


@pytest.mark.real_claude
def test_resume(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
    fake_api: FakeAnthropic,
) -> None:
    first = real(real_claude_bin, "first turn", workdir, real_claude_env)
    sid = first.init["session_id"]
    second = real(real_claude_bin, "second turn", workdir, real_claude_env, "--resume", sid)
    assert second.returncode == 0, second.stderr
    assert second.init["session_id"] == sid and second.result["session_id"] == sid
    assert second.result["result"] == "FAKE_DONE: second turn"
    # The resumed request carries the history of the first run.
    history = json.dumps(fake_api.message_requests()[-1]["messages"])
    assert "FAKE_DONE: first turn" in history

    f1 = fake(fake_claude_bin, "first turn", workdir, fake_env)
    fsid = f1.init["session_id"]
    f2 = fake(fake_claude_bin, "second turn", workdir, fake_env, "--resume", fsid)
    assert f2.init["session_id"] == fsid and f2.result["session_id"] == fsid
    assert f2.result["result"].startswith("RESUMED")
    assert_same_structure(second, f2)


@pytest.mark.real_claude
def test_resume_unknown_session(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
) -> None:
    bogus = "11111111-2222-3333-4444-555555555555"
    r = real(real_claude_bin, "hi", workdir, real_claude_env, "--resume", bogus)
    f = fake(fake_claude_bin, "hi", workdir, fake_env, "--resume", bogus)
    for run in (r, f):
        assert run.returncode == 1
        assert run.result["subtype"] == "error_during_execution"
        assert "No conversation found" in run.stderr
    assert r.shape() == f.shape() == [("result", "error_during_execution", None)]
    assert set(f.result) == set(r.result)


@pytest.mark.real_claude
def test_max_turns(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
) -> None:
    r = real(
        real_claude_bin, "BASH: echo a\nBASH: echo b", workdir, real_claude_env, "--max-turns", "1"
    )
    assert r.returncode == 1
    assert r.result["subtype"] == "error_max_turns"
    f = fake(fake_claude_bin, "[tool:Bash] [tool:Bash]", workdir, fake_env, "--max-turns", "1")
    assert_same_structure(r, f)


@pytest.mark.real_claude
@pytest.mark.skipif(not IS_ROOT, reason="the root refusal only happens when running as root")
def test_root_refusal(
    real_claude_bin: Path,
    real_claude_env: dict[str, str],
    fake_claude_bin: Path,
    workdir: Path,
) -> None:
    env = {k: v for k, v in real_claude_env.items() if k != "IS_SANDBOX"}
    r = real(real_claude_bin, "hi", workdir, env)
    f = fake(fake_claude_bin, "hi", workdir, {})
    for run in (r, f):
        assert run.returncode == 1
        assert run.stdout == ""
        assert ROOT_REFUSAL in run.stderr
    # With IS_SANDBOX=1 the fake goes ahead, like the real CLI (see test_text_task).
    assert fake(fake_claude_bin, "hi", workdir, {"IS_SANDBOX": "1"}).returncode == 0


@pytest.mark.real_claude
def test_fake_api_records_requests(
    real_claude_bin: Path, real_claude_env: dict[str, str], workdir: Path, fake_api: FakeAnthropic
) -> None:
    real(real_claude_bin, "hello", workdir, real_claude_env)
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


def test_fake_logs_invocation_and_env(
    fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    env = {**fake_env, "FAKE_CLAUDE_LOG": str(log), "MY_VAR": "xyz"}
    run = fake(
        fake_claude_bin,
        "[env:MY_VAR] [env:NOPE_NOT_SET]",
        workdir,
        env,
        "--model",
        "claude-sonnet-4-5",
        "--allowedTools",
        "Bash",
        "Write",
        "--max-turns",
        "5",
        "--unknown-flag",
    )
    assert run.returncode == 0, run.stderr
    texts = [ln["message"]["content"][0]["text"] for ln in run.lines if ln["type"] == "assistant"]
    assert texts[:2] == ["ENV MY_VAR=xyz", "ENV NOPE_NOT_SET=<unset>"]
    assert run.init["model"] == "claude-sonnet-4-5"
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["cwd"] == str(workdir)
    assert entry["argv"][entry["argv"].index("--allowedTools") + 1] == "Bash"
    assert "--unknown-flag" in entry["argv"]


def test_fake_session_id_flag(fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path):
    sid = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    run = fake(fake_claude_bin, "hi", workdir, fake_env, "--session-id", sid)
    assert run.init["session_id"] == sid == run.result["session_id"]


def test_fake_failure_modes(fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path):
    crash = fake(fake_claude_bin, "[crash]", workdir, fake_env)
    assert crash.returncode == 3 and crash.stderr
    assert crash.lines and not [ln for ln in crash.lines if ln["type"] == "result"]

    now = fake(fake_claude_bin, "[exit-now]", workdir, fake_env)
    assert now.returncode == 2 and now.stdout == "" and now.stderr

    segv = fake(fake_claude_bin, "[segv]", workdir, fake_env)
    assert segv.returncode == -signal.SIGSEGV
    assert segv.shape() == [("system", "init", None)]

    refusal = fake(fake_claude_bin, "[as-root-refusal]", workdir, fake_env)
    assert refusal.returncode == 1 and refusal.stdout == "" and ROOT_REFUSAL in refusal.stderr

    failed = fake(fake_claude_bin, "[fail]", workdir, fake_env)
    assert failed.returncode == 1 and failed.result["api_error_status"] == 400

    tool_err = fake(fake_claude_bin, "[tool-error:Bash]", workdir, fake_env)
    assert tool_err.returncode == 0
    user = next(ln for ln in tool_err.lines if ln["type"] == "user")
    assert user["message"]["content"][0]["is_error"] is True


def test_fake_invalid_json(fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path):
    run = fake(fake_claude_bin, "[invalid-json:3]", workdir, fake_env)
    assert run.returncode == 0
    assert len(run.bad_lines) == 4  # 3 plain-text lines + 1 truncated JSON line
    assert run.result["is_error"] is False


def test_fake_flood(fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path) -> None:
    started = time.monotonic()
    run = fake(fake_claude_bin, "[flood:4]", workdir, fake_env)
    elapsed = time.monotonic() - started
    assert run.returncode == 0
    assert len(run.stdout) >= 4 * 1024 * 1024
    floods = [ln for ln in run.lines if ln.get("message", {}).get("id", "").startswith("msg_flood")]
    assert len(floods) > 3000
    assert not run.bad_lines
    assert run.lines[-1]["type"] == "result"
    assert elapsed < 20


def _start(bin_: Path, prompt: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the fake in its own process group, as claudine starts agents."""
    return subprocess.Popen(
        [str(bin_), "-p", prompt, *STREAM_FLAGS, *SKIP_PERMS],
        cwd=cwd,
        env={**os.environ, **env},
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
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
    tmp_path: Path,
    procs: list[subprocess.Popen[str]],
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    own_pid_file = tmp_path / "own.pid"
    prompt = f"[pid-file:{own_pid_file}] [grandchild:{pid_file}] [text:ready] [hang]"
    proc = _start(fake_claude_bin, prompt, workdir, fake_env)
    procs.append(proc)
    _read_until_text(proc, "ready")
    assert int(own_pid_file.read_text()) == proc.pid
    grandchild = int(pid_file.read_text())
    assert psutil.Process(grandchild).ppid() == proc.pid
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    assert _gone(grandchild, timeout=10)


def test_fake_ignore_sigterm_needs_sigkill(
    fake_claude_bin: Path,
    fake_env: dict[str, str],
    workdir: Path,
    procs: list[subprocess.Popen[str]],
) -> None:
    proc = _start(fake_claude_bin, "[ignore-sigterm] [text:ready] [hang]", workdir, fake_env)
    procs.append(proc)
    _read_until_text(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_fake_sleep_emits_bash_tool(
    fake_claude_bin: Path, fake_env: dict[str, str], workdir: Path
) -> None:
    run = fake(fake_claude_bin, "[sleep:0.2]", workdir, fake_env)
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
