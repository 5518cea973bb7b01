"""The settings table: every setting declared once, with its kind, range, scope and sources.

Parsing, validation, error messages, the README table and ``claudine config`` are all
driven from :data:`SPECS`, so they cannot drift apart. Other code that needs a setting's
range or choices (a task request's validation, a form) reads them through
:func:`setting_spec` instead of repeating the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BOOL_WORDS",
    "EnvVar",
    "Kind",
    "SPECS",
    "Scope",
    "SettingSpec",
    "format_number",
    "owner_setting_names",
    "setting_scope",
    "setting_spec",
    "setting_specs",
    "task_setting_names",
]

Kind = Literal[
    "path", "str", "float", "int", "size", "optint", "optfloat", "bool", "choice", "list",
    "args", "url", "address"
]
"""How a setting's value is written and what type it becomes (``size``: bytes with an optional
K/M/G/T suffix; ``optint`` / ``optfloat``: a whole number / a number, or ``none``;
``list``: comma-separated names; ``args``: arguments in shell syntax; ``address``:
``host:port``, or ``none``)."""

Scope = Literal["task", "owner", "local"]
"""Whose value a setting is, when several processes share a home.

- ``task``: how one task's agent runs (binary, timeout, permissions, output limit, extra
  arguments). The delegating process's value is copied into the task row, so a task runs
  as it was asked for whichever process owns the home when it starts.
- ``owner``: how the engine owner schedules and supervises every task (admission limits,
  retries, recovery, stopping, idle exit, worktree defaults and merges). Only the running
  owner's values count; it publishes them in ``engine.lock`` so a client can tell when its
  own differ (see :func:`claudine_core.config.owner_mismatches`).
- ``local``: this process alone (which home it talks to, how verbosely it logs).
"""

BOOL_WORDS: tuple[tuple[str, str], ...] = (
    ("1", "0"), ("true", "false"), ("yes", "no"), ("on", "off"))
"""The (true, false) spellings a boolean setting accepts, in the order messages list them."""

_NUMBER_NOUNS = {"float": "a number", "size": "a size", "int": "a whole number",
                 "optint": "a whole number", "optfloat": "a number"}
# What a non-numeric kind accepts, as an error message or the README says it.
_KIND_TEXT = {
    "list": "a comma-separated list of tool names (a list of strings in config.toml)",
    "args": "arguments in shell syntax (a list of strings in config.toml)",
    "url": "an http:// or https:// URL",
    "address": "a host:port address (e.g. 127.0.0.1:6379)",
    "path": "a directory path",
    "str": "a non-empty string",
}


def format_number(number: float) -> str:
    """``5`` for a whole number however it is typed, else the float's repr (``0.5``)."""
    return str(int(number)) if float(number).is_integer() else repr(number)


@dataclass(frozen=True)
class EnvVar:
    """One environment variable feeding a setting."""

    name: str
    per_unit: int = 1
    """How many of this variable's units make one unit of the setting: the original
    claudine's ``TASK_TIMEOUT`` is in milliseconds while the setting is in seconds."""
    unit: str | None = None
    """The variable's unit when it differs from the setting's, else None."""


@dataclass(frozen=True)
class SettingSpec:
    """The declaration of one setting: what it accepts, where it comes from, whose it is.

    Read one with :func:`setting_spec`. Numbers are in the setting's own unit (``unit``);
    an environment variable in another unit says so in its :class:`EnvVar`.
    """

    name: str
    """The :class:`~claudine_core.config.Config` field and ``config.toml`` key."""
    kind: Kind
    doc: str
    """One or two sentences for people: what the setting does."""
    env: tuple[EnvVar, ...] = ()
    """The environment variables that set it; a later one wins over an earlier one."""
    minimum: float | None = None
    """Smallest accepted number (inclusive) for numeric kinds, None for no lower bound."""
    maximum: float | None = None
    """Largest accepted number (inclusive) for numeric kinds, None for no upper bound."""
    unit: str = ""
    """The unit numbers are in (``seconds``, ``bytes``, ``percent``), or empty."""
    choices: tuple[str, ...] = ()
    """The accepted values of a ``choice`` setting, canonical spelling."""
    default_text: str | None = None
    """How to show the default when its value would mislead (a computed path)."""
    scope: Scope = field(kw_only=True)
    """Whose value it is (see :data:`Scope`); required so no setting forgets to say."""

    def in_range(self, number: float, per_unit: int = 1) -> bool:
        """Whether ``number`` (in units of which ``per_unit`` make one of the setting's)
        is finite and within ``minimum`` and ``maximum``."""
        # Compare in the source's units so that e.g. 1000 ms is exactly the 1 s bound.
        if not math.isfinite(number):
            return False
        if self.minimum is not None and number < self.minimum * per_unit:
            return False
        return not (self.maximum is not None and number > self.maximum * per_unit)

    def describe_expected(self, env: EnvVar | None = None) -> str:
        """What the setting accepts, as error messages and the README say it.

        Args:
            env: describe it in this variable's units (``TASK_TIMEOUT`` in milliseconds)
                instead of the setting's own.

        Returns:
            Text such as ``"a number from 1 to 86400 (seconds)"`` or
            ``"one of: skip, acceptEdits, allowedTools, default"``.
        """
        if self.kind in _NUMBER_NOUNS:
            return self._describe_number(env)
        if self.kind == "bool":
            return "one of " + ", ".join(word for pair in BOOL_WORDS for word in pair)
        if self.kind == "choice":
            return "one of: " + ", ".join(self.choices)
        return _KIND_TEXT[self.kind]

    def _describe_number(self, env: EnvVar | None) -> str:
        scale = env.per_unit if env else 1
        unit = (env.unit if env and env.unit else None) or self.unit
        low = None if self.minimum is None else self.minimum * scale
        high = None if self.maximum is None else self.maximum * scale
        if low is not None and high is not None:
            bounds = f"from {format_number(low)} to {format_number(high)}"
        elif low is not None:
            bounds = f"of at least {format_number(low)}"
        else:
            bounds = ""
        text = f"{_NUMBER_NOUNS[self.kind]} {bounds}".strip()
        if self.kind == "size":
            text += " bytes (a plain number, or with a K, M, G or T suffix, e.g. 512M)"
        elif unit:
            text += f" ({unit})"
        if self.kind in ("optint", "optfloat"):
            text += ", or 'none' for no limit"
        return text


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "home",
        "path",
        "Directory holding the task database, run output and the engine lock.",
        env=(EnvVar("CLAUDINE_HOME"),),
        default_text="platformdirs user_data_dir('claudine'), e.g. ~/.local/share/claudine",
        scope="local",
    ),
    SettingSpec(
        "claude_bin",
        "str",
        "Claude Code executable: a name looked up on PATH, or a path.",
        env=(EnvVar("CLAUDINE_CLAUDE_BIN"),),
        scope="task",
    ),
    SettingSpec(
        "task_timeout_s",
        "float",
        "How long a task may run before it is stopped as timed out.",
        env=(EnvVar("TASK_TIMEOUT", 1000, "milliseconds"), EnvVar("CLAUDINE_TASK_TIMEOUT")),
        minimum=1,
        maximum=86400,
        unit="seconds",
        scope="task",
    ),
    SettingSpec(
        "max_output_bytes",
        "size",
        "Output buffer limit per task.",
        env=(EnvVar("MAX_OUTPUT_BUFFER"), EnvVar("CLAUDINE_MAX_OUTPUT_BUFFER")),
        minimum=1024,
        maximum=1073741824,
        unit="bytes",
        scope="task",
    ),
    SettingSpec(
        "cpu_threshold",
        "float",
        "Total machine CPU use above which no new agent is started.",
        env=(EnvVar("CPU_THRESHOLD"), EnvVar("CLAUDINE_CPU_THRESHOLD")),
        minimum=1,
        maximum=100,
        unit="percent",
        scope="owner",
    ),
    SettingSpec(
        "memory_reserve",
        "size",
        "Memory kept free: no new agent starts if it would leave less than this available.",
        env=(EnvVar("MEMORY_RESERVE"), EnvVar("CLAUDINE_MEMORY_RESERVE")),
        minimum=0,
        unit="bytes",
        scope="owner",
    ),
    SettingSpec(
        "max_agents",
        "optint",
        "Hard cap on agents running at once; none means only CPU and memory limit it.",
        env=(EnvVar("CLAUDINE_MAX_AGENTS"),),
        minimum=1,
        scope="owner",
    ),
    SettingSpec(
        "log_level",
        "choice",
        "Log verbosity.",
        env=(EnvVar("LOG_LEVEL"), EnvVar("CLAUDINE_LOG_LEVEL")),
        choices=("debug", "info", "warn", "error"),
        scope="local",
    ),
    SettingSpec(
        "permission_mode",
        "choice",
        "How unattended agents get past permission prompts: skip = "
        "--dangerously-skip-permissions; acceptEdits; allowedTools = only allowed_tools; "
        "default = risky tools are denied.",
        env=(EnvVar("CLAUDINE_PERMISSION_MODE"),),
        choices=("skip", "acceptEdits", "allowedTools", "default"),
        scope="task",
    ),
    SettingSpec(
        "allowed_tools",
        "list",
        "Tools agents may use when permission_mode is allowedTools (then required).",
        env=(EnvVar("CLAUDINE_ALLOWED_TOOLS"),),
        scope="task",
    ),
    SettingSpec(
        "max_retries",
        "int",
        "Automatic retries of a task after a transient failure.",
        env=(EnvVar("CLAUDINE_MAX_RETRIES"),),
        minimum=0,
        maximum=20,
        scope="owner",
    ),
    SettingSpec(
        "retry_base_delay_s",
        "float",
        "Delay before the first automatic retry; later ones back off up to retry_max_delay_s.",
        env=(EnvVar("CLAUDINE_RETRY_BASE_DELAY"),),
        minimum=0,
        maximum=3600,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "retry_max_delay_s",
        "float",
        "Longest delay between retries; must not be below retry_base_delay_s.",
        env=(EnvVar("CLAUDINE_RETRY_MAX_DELAY"),),
        minimum=0,
        maximum=86400,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "recovery_policy",
        "choice",
        "What to do with a task whose agent died while no engine watched it: resume the "
        "Claude session, requeue from scratch, or fail it.",
        env=(EnvVar("CLAUDINE_RECOVERY"),),
        choices=("resume", "requeue", "fail"),
        scope="owner",
    ),
    SettingSpec(
        "kill_grace_s",
        "float",
        "Time between SIGTERM and SIGKILL when stopping an agent.",
        env=(EnvVar("CLAUDINE_KILL_GRACE"),),
        minimum=0,
        maximum=300,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "agent_nice",
        "int",
        "Scheduling priority of the agents (a nice value, applied to each agent's session "
        "too): under load a console, shell or editor on the same machine still gets the "
        "CPU at once, and idle CPU still goes to the agents. 0: agents compete equally.",
        env=(EnvVar("CLAUDINE_AGENT_NICE"),),
        minimum=0,
        maximum=19,
        scope="owner",
    ),
    SettingSpec(
        "idle_exit_s",
        "float",
        "A background `claudine serve` started by the CLI exits after this long with "
        "nothing queued, blocked or running and no active schedule.",
        env=(EnvVar("CLAUDINE_IDLE_EXIT"),),
        minimum=0,
        maximum=86400,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "handoff_on_exit",
        "bool",
        "An owner that exits with tasks queued or running starts a background `claudine "
        "serve` to take them over (unless you chose to stop the agents).",
        env=(EnvVar("CLAUDINE_HANDOFF_ON_EXIT"),),
        scope="owner",
    ),
    SettingSpec(
        "agent_cpu_cost",
        "float",
        "Projected share of total machine CPU one newly started agent will use (admission).",
        env=(EnvVar("CLAUDINE_AGENT_CPU"),),
        minimum=0,
        maximum=100,
        unit="percent",
        scope="owner",
    ),
    SettingSpec(
        "agent_memory_cost",
        "size",
        "Projected memory one newly started agent will use (admission).",
        env=(EnvVar("CLAUDINE_AGENT_MEMORY"),),
        minimum=0,
        unit="bytes",
        scope="owner",
    ),
    SettingSpec(
        "settle_window_s",
        "float",
        "How long a newly started agent is counted by projection instead of measurement.",
        env=(EnvVar("CLAUDINE_SETTLE_WINDOW"),),
        minimum=0,
        maximum=600,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "cpu_limit_when_idle",
        "bool",
        "Apply cpu_threshold even when no agent of this home is running. Off (the default), "
        "the CPU limit only holds back a new agent while one of ours runs, as GNU make's -l "
        "does, so a machine kept busy by other work still runs the queue one agent at a "
        "time; the memory reserve and max_agents always hold.",
        env=(EnvVar("CLAUDINE_CPU_LIMIT_WHEN_IDLE"),),
        scope="owner",
    ),
    SettingSpec(
        "default_worktree",
        "bool",
        "Run a new task in its own git worktree unless it asks for none; read where the "
        "task is delegated.",
        env=(EnvVar("CLAUDINE_WORKTREE"),),
        scope="task",
    ),
    SettingSpec(
        "default_merge_strategy",
        "choice",
        "How a worktree task's changes come back by default.",
        env=(EnvVar("CLAUDINE_MERGE_STRATEGY"),),
        choices=("manual", "auto", "patch", "pr"),
        scope="owner",
    ),
    SettingSpec(
        "on_dependency_failure",
        "choice",
        "What a task does when a task it depends on fails or is cancelled: fail (and so do "
        "its dependents), cancel, or run anyway; read where the task is delegated.",
        env=(EnvVar("CLAUDINE_ON_DEPENDENCY_FAILURE"),),
        choices=("fail", "cancel", "run"),
        scope="task",
    ),
    SettingSpec(
        "github_api_url",
        "url",
        "GitHub API base URL for pull requests (GitHub Enterprise); none = api.github.com.",
        env=(EnvVar("CLAUDINE_GITHUB_API_URL"),),
        scope="owner",
    ),
    SettingSpec(
        "extra_agent_args",
        "args",
        "Extra command-line arguments appended to every claude invocation (shell syntax).",
        env=(EnvVar("CLAUDINE_AGENT_ARGS"),),
        scope="task",
    ),
    SettingSpec(
        "daily_budget_usd",
        "optfloat",
        "Most the home's agents may spend in a day (local time), in US dollars, as the agents "
        "report their cost; once reached no new agent starts until midnight. none: no limit.",
        env=(EnvVar("CLAUDINE_DAILY_BUDGET_USD"),),
        minimum=0,
        unit="USD",
        scope="owner",
    ),
    SettingSpec(
        "monthly_budget_usd",
        "optfloat",
        "Most the home's agents may spend in a calendar month (local time), in US dollars; "
        "once reached no new agent starts until the month ends. none: no limit.",
        env=(EnvVar("CLAUDINE_MONTHLY_BUDGET_USD"),),
        minimum=0,
        unit="USD",
        scope="owner",
    ),
    SettingSpec(
        "budget_stop",
        "bool",
        "When the daily or monthly budget is reached, also stop the agents still running "
        "(they fail, saying so); off: they finish.",
        env=(EnvVar("CLAUDINE_BUDGET_STOP"),),
        scope="owner",
    ),
    SettingSpec(
        "usage_limit_wait_s",
        "float",
        "How long a task hit by an API rate limit stays parked when the agent's output "
        "gives no reset time (a subscription limit always gives one).",
        env=(EnvVar("CLAUDINE_USAGE_LIMIT_WAIT"),),
        minimum=1,
        maximum=86400,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "fallback_model",
        "str",
        "Model the agent falls back to when its model is overloaded (claude "
        "--fallback-model); none: no fallback.",
        env=(EnvVar("CLAUDINE_FALLBACK_MODEL"),),
        scope="task",
    ),
    SettingSpec(
        "desktop_notifications",
        "bool",
        "Show a desktop notification (notify-send on Linux, osascript on macOS) when a task "
        "ends; sent by the owner, once per task, and skipped where no notifier is installed.",
        env=(EnvVar("CLAUDINE_DESKTOP_NOTIFICATIONS"),),
        scope="owner",
    ),
    SettingSpec(
        "on_finish",
        "args",
        "Command the owner runs once when a task ends (and when a usage limit parks it), with "
        "the task's JSON on stdin and "
        "CLAUDINE_TASK_ID / CLAUDINE_TASK_STATUS in its environment; run directly, never "
        "through a shell. Empty: none.",
        env=(EnvVar("CLAUDINE_ON_FINISH"),),
        scope="owner",
    ),
    SettingSpec(
        "on_finish_timeout_s",
        "float",
        "How long the on_finish command may run before it is killed.",
        env=(EnvVar("CLAUDINE_ON_FINISH_TIMEOUT"),),
        minimum=1,
        maximum=3600,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "backend",
        "choice",
        "Where the owner runs agents: local = on this machine; ray = on the Ray cluster at "
        "ray_address (needs pip install 'claudine[ray]').",
        env=(EnvVar("CLAUDINE_BACKEND"),),
        choices=("local", "ray"),
        scope="owner",
    ),
    SettingSpec(
        "ray_address",
        "address",
        "The Ray cluster's head (its GCS host:port, as `ray start --head` prints it); "
        "required with backend = ray.",
        env=(EnvVar("CLAUDINE_RAY_ADDRESS"),),
        scope="owner",
    ),
    SettingSpec(
        "ray_namespace",
        "str",
        "The Ray namespace the home's runs are named in: one per home sharing a cluster.",
        env=(EnvVar("CLAUDINE_RAY_NAMESPACE"),),
        scope="owner",
    ),
    SettingSpec(
        "ray_lost_after_s",
        "float",
        "A run on Ray whose node has not answered for this long is lost (killed best-effort; "
        "the retry policy decides, as for an agent that vanished).",
        env=(EnvVar("CLAUDINE_RAY_LOST_AFTER"),),
        minimum=1,
        maximum=3600,
        unit="seconds",
        scope="owner",
    ),
    SettingSpec(
        "ray_shared_fs",
        "bool",
        "The cluster's nodes see this machine's files at the same paths (a shared disk): "
        "every task may run on any node, in place. Off: a task runs elsewhere only in a "
        "worktree whose repository has a remote (its code travels by git); the others run "
        "on this machine's node.",
        env=(EnvVar("CLAUDINE_RAY_SHARED_FS"),),
        scope="owner",
    ),
)

_BY_NAME = {spec.name: spec for spec in SPECS}


def setting_specs() -> tuple[SettingSpec, ...]:
    """Every setting's declaration, in the order ``claudine config`` and the README list them."""
    return SPECS


def setting_spec(name: str) -> SettingSpec:
    """The declaration of the setting ``name`` (a :class:`Config` field name).

    Use it to derive a range or choices instead of repeating them, e.g.
    ``setting_spec("task_timeout_s").maximum`` is the longest task timeout in seconds and
    ``.describe_expected()`` the text an error message gives for it.

    Raises:
        KeyError: ``name`` is not a setting.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no setting named {name!r}") from None


def setting_scope(name: str) -> Scope:
    """``task``, ``owner`` or ``local`` for a setting name (see :data:`Scope`)."""
    return setting_spec(name).scope


def task_setting_names() -> tuple[str, ...]:
    """Settings that travel with a task: copied into its row when it is delegated."""
    return tuple(spec.name for spec in SPECS if spec.scope == "task")


def owner_setting_names() -> tuple[str, ...]:
    """Settings only the running engine owner's values count for."""
    return tuple(spec.name for spec in SPECS if spec.scope == "owner")
