"""One validation of a task request, for every front end.

:func:`read_request` turns a front end's raw values (text from a form or a command line,
JSON values from an MCP call), keyed by :class:`~claudine_core.models.TaskSpec` field name,
into a TaskSpec; :func:`check_spec` checks a TaskSpec (ranges, names, the working
directory, the worktree choice) and resolves what the delegating process decides (the
absolute directory, the default worktree choice). Both report *every* problem at once,
keyed by field, in an :class:`~claudine_core.errors.InvalidRequest`; each front end names
the field its own way (``--timeout``, ``timeout``, the form's field) with
:func:`describe_problems`.

Ranges come from the settings table (a task's timeout and output limit have the same
bounds as the settings that give their defaults) and choices from the enums, so no front
end keeps its own copy.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from claudine_core.errors import InvalidRequest
from claudine_core.models import (
    MAX_DEPENDENCIES,
    DependencyPolicy,
    MergeStrategy,
    PermissionMode,
    Priority,
    TaskSpec,
)

__all__ = [
    "MAX_BUDGET_USD",
    "MAX_FIELD_CHARS",
    "MAX_PIPELINE_STEPS",
    "MAX_PROMPT_BYTES",
    "InvalidRequest",
    "check_prompt_size",
    "check_spec",
    "describe_problems",
    "read_pipeline_request",
    "read_request",
    "setting_bounds",
    "validate_cwd",
]

MAX_PROMPT_BYTES = 1_048_576
"""Longest prompt (or resume message) in bytes of UTF-8. It goes to ``claude -p`` on stdin,
so no argv limit applies; 1 MiB is far above any real prompt and keeps a stray file paste
from filling the store. Long material belongs in a file the agent reads."""
MAX_PIPELINE_STEPS = 50
"""Most steps one pipeline may have."""
MAX_FIELD_CHARS = 4_096  # a model name, a branch, a tool name: never longer in practice
MAX_BUDGET_USD = 10_000.0
"""Highest budget one task may have, in US dollars: far above any single agent run, and
low enough that a typo (an extra zero or three) is refused instead of spent."""
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\[\]-]*$")
BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[^\s~^:?*\[\\]+(?<![./])(?<!\.lock)$")
WORKTREE_TOKEN = "{worktree}"
"""Stands in a message for the front end's own way to ask for a worktree."""
NEEDS_WORKTREE = f"only applies to a worktree task: add {WORKTREE_TOKEN} or drop it"

_TRUE = ("1", "true", "yes", "on", "y")
_FALSE = ("0", "false", "no", "off", "n")
_DEFAULT = ("", "default")
# Human names of the text fields, for the messages that are about a field's characters.
_TEXT_NAMES = {"prompt": "prompt", "cwd": "working directory", "model": "model",
               "fallback_model": "fallback model", "base_branch": "base branch",
               "resume_prompt": "resume message"}


# -- ranges and choices, from the settings table and the enums ------------------------------


def setting_bounds(name: str) -> tuple[float, float]:
    """The (lowest, highest) value of a numeric setting, as the settings table declares it;
    a task's own value for it (``task_timeout_s``, ``max_output_bytes``) has the same."""
    from claudine_core.config import setting_spec

    spec = setting_spec(name)
    assert spec.minimum is not None and spec.maximum is not None, name
    return spec.minimum, spec.maximum


def _choices(enum: Any) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


# -- from raw values to a TaskSpec ----------------------------------------------------------


def read_request(values: Mapping[str, Any], *, default_worktree: bool,
                 dependency_policy: str = "fail") -> TaskSpec:
    """A checked TaskSpec from raw values keyed by TaskSpec field name.

    Text is accepted where a front end only has text (``"600"``, ``"P1"``, ``"yes"``,
    ``"default"``); absent keys, None and empty text mean the default.

    Raises:
        InvalidRequest: with every problem, keyed by field.
    """
    problems: dict[str, str] = {}
    fields: dict[str, Any] = {"prompt": values.get("prompt") or ""}
    for name, reader in _READERS.items():
        raw = values.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        try:
            fields[name] = reader(raw)
        except ValueError as exc:
            problems[name] = str(exc)
    spec = TaskSpec(**fields)
    try:
        checked = check_spec(spec, default_worktree=default_worktree, skip=set(problems),
                             dependency_policy=dependency_policy)
    except InvalidRequest as exc:
        problems.update(exc.problems)
    if problems:
        raise InvalidRequest(problems=_in_field_order(problems))
    return checked


def read_pipeline_request(values: Mapping[str, Any], steps: list[str], *,
                          default_worktree: bool,
                          dependency_policy: str = "fail") -> TaskSpec:
    """The options every step of a pipeline shares, as a TaskSpec (its prompt a stand-in:
    each step has its own), read like :func:`read_request`; each step's prompt is checked
    too, so every problem is reported at once (a step's under ``steps``, naming it).

    Raises:
        InvalidRequest: with every problem, keyed by field (``steps`` for the prompts).
    """
    problems: dict[str, str] = {}
    wrong = []
    for number, prompt in enumerate(steps, 1):
        try:
            _check_text("prompt", prompt, False)
            _check_prompt(prompt)
        except ValueError as exc:
            wrong.append(f"step {number}: {exc}")
    try:
        template = read_request({**values, "prompt": "pipeline step"},
                                default_worktree=default_worktree,
                                dependency_policy=dependency_policy)
    except InvalidRequest as exc:
        if not exc.problems:
            raise
        problems.update(exc.problems)
    if wrong:
        problems["steps"] = "; ".join(wrong)
    if problems:
        raise InvalidRequest(problems=problems)
    return template


def _read_priority(raw: Any) -> Priority:
    return Priority.parse(raw)


def _read_seconds(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a number of seconds (e.g. 600)")
    try:
        return float(str(raw).strip().removesuffix("s")) if isinstance(raw, str) else float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number of seconds (e.g. 600)") from None


def _read_dollars(raw: Any) -> float:
    """A sum of US dollars: a number, or text such as ``2.50`` or ``$2.50``."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not an amount of US dollars (e.g. 2.50)")
    try:
        return float(raw.strip().removeprefix("$")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not an amount of US dollars (e.g. 2.50)") from None


def _read_bytes(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    from claudine_core.config import parse_size

    try:
        return parse_size(str(raw))
    except ValueError:
        raise ValueError(f"{raw!r} is not a size in bytes (e.g. 10485760 or 10MB)") from None


def _read_choice(enum: Any, what: str) -> Any:
    def read(raw: Any) -> Any:
        text = str(raw).strip()
        for member in enum:
            if text.lower() == member.value.lower():
                return member
        raise ValueError(f"{what} {text!r} is not one of {', '.join(_choices(enum))}")

    return read


def _read_list(raw: Any) -> tuple[str, ...]:
    """A list, or items separated by commas (a flag or a form field)."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(str(item).strip() for item in items if str(item).strip())


def _read_yes_no(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _DEFAULT:
        return None
    raise ValueError(f"{raw!r} is not yes, no or default")


def _read_text(raw: Any) -> str:
    return str(raw).strip()


_READERS: dict[str, Any] = {
    "priority": _read_priority,
    "cwd": _read_text,
    "timeout_s": _read_seconds,
    "model": _read_text,
    "fallback_model": _read_text,
    "max_budget_usd": _read_dollars,
    "max_output_bytes": _read_bytes,
    "permission_mode": _read_choice(PermissionMode, "permission mode"),
    "allowed_tools": _read_list,
    "worktree": _read_yes_no,
    "base_branch": _read_text,
    "merge_strategy": _read_choice(MergeStrategy, "merge strategy"),
    "commit_changes": _read_yes_no,
    "depends_on": _read_list,
    "on_dependency_failure": _read_choice(DependencyPolicy, "dependency policy"),
    "continue_from": _read_text,
}


# -- checking a TaskSpec -----------------------------------------------------------------------


def check_spec(spec: TaskSpec, *, default_worktree: bool,
               skip: set[str] | frozenset[str] = frozenset(),
               dependency_policy: str = "fail") -> TaskSpec:
    """``spec`` checked, with its directory made absolute and its worktree choice decided
    (None: ``default_worktree``, the delegating process's setting).

    Raises:
        InvalidRequest: with every problem, keyed by field (fields in ``skip`` already have
            one and are not checked again).
    """
    problems: dict[str, str] = {}

    def check(name: str, checker: Any, *args: Any) -> Any:
        if name in skip or name in problems:
            return None
        try:
            return checker(*args)
        except ValueError as exc:
            problems[name] = str(exc)
            return None

    for name, label in _TEXT_NAMES.items():
        check(name, _check_text, label, getattr(spec, name), name not in ("prompt",
                                                                          "resume_prompt"))
    for tool in spec.allowed_tools:
        check("allowed_tools", _check_text, "allowed tool", tool, True)
    for ref in spec.depends_on:
        check("depends_on", _check_text, "dependency id", ref, True)
    check("continue_from", _check_text, "id of the task to continue", spec.continue_from, True)
    if len(set(spec.depends_on)) > MAX_DEPENDENCIES:
        problems.setdefault("depends_on", f"{len(set(spec.depends_on))} dependencies: a task "
                            f"may depend on at most {MAX_DEPENDENCIES}")
    check("prompt", _check_prompt, spec.prompt)
    if spec.resume_prompt is not None:
        check("resume_prompt", check_prompt_size, spec.resume_prompt)
    # A continuation's directory and worktree choice, when not given, are the continued
    # task's: the service fills them in (TaskService._where_continued), then checks again.
    inherited = bool(spec.continue_from) and spec.cwd in (".", "")
    cwd: Any = None if inherited else check("cwd", validate_cwd, spec.cwd)
    check("timeout_s", _check_range, spec.timeout_s, "task_timeout_s", "timeout", " seconds")
    check("max_output_bytes", _check_range, spec.max_output_bytes, "max_output_bytes",
          "max output", " bytes")
    for name in ("model", "fallback_model"):
        check(name, _check_pattern, getattr(spec, name), MODEL_RE,
              "is not a model name: use one without spaces, e.g. sonnet, opus or "
              "claude-sonnet-4-5")
    check("fallback_model", _check_fallback, spec.fallback_model, spec.model)
    check("max_budget_usd", _check_budget, spec.max_budget_usd)
    check("base_branch", _check_pattern, spec.base_branch, BRANCH_RE,
          "is not a branch name (e.g. main or release/2.3)")
    if spec.permission_mode is PermissionMode.ALLOWED_TOOLS and not spec.allowed_tools:
        problems.setdefault("allowed_tools", "the allowedTools permission mode needs the "
                            "list of tools the agent may use")
    worktree = default_worktree if spec.worktree is None else spec.worktree
    if inherited and spec.worktree is None:
        pass  # decided with the directory, from the continued task
    elif not worktree:
        for name, value in (("base_branch", spec.base_branch),
                            ("merge_strategy", spec.merge_strategy),
                            ("commit_changes", spec.commit_changes)):
            if value is not None and name not in skip:
                problems.setdefault(name, NEEDS_WORKTREE)
    elif cwd is not None and not _inside_git_repository(Path(cwd)):
        problems.setdefault("worktree", f"{cwd} is not inside a git repository: a worktree "
                            "task needs one (run 'git init' and commit there, or ask for no "
                            "worktree)")
    elif cwd is not None:
        check("worktree", _check_repo_settings, Path(cwd))
    if problems:
        raise InvalidRequest(problems=_in_field_order(problems))
    # Continuing a failed task is how its work is picked up again: a continuation runs
    # whatever the continued task's outcome, unless the request says otherwise.
    policy = spec.on_dependency_failure or (
        DependencyPolicy.RUN if spec.continue_from else DependencyPolicy(dependency_policy))
    if inherited:
        return replace(spec, on_dependency_failure=policy,
                       depends_on=tuple(dict.fromkeys(spec.depends_on)))
    return replace(spec, cwd=cwd, worktree=worktree, on_dependency_failure=policy,
                   depends_on=tuple(dict.fromkeys(spec.depends_on)))


def _check_repo_settings(cwd: Path) -> None:
    """The repository's .claudine.toml, read now so a wrong key is refused at once."""
    from claudine_core.isolation.settings import RepoSettingsError, load_settings_for

    try:
        load_settings_for(cwd)
    except RepoSettingsError as exc:
        raise ValueError(str(exc)) from None


def _check_text(label: str, value: str | None, limited: bool) -> None:
    """Refuse text no agent can be given: NUL bytes, lone surrogates, absurd lengths."""
    if value is None:
        return
    if "\x00" in value:
        raise ValueError(f"the {label} contains a NUL byte (\\0): remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {label} is not valid Unicode text (it holds a lone "
                         "surrogate): send it as UTF-8") from None
    if limited and len(value) > MAX_FIELD_CHARS:
        raise ValueError(f"the {label} is {len(value):,} characters long; the limit is "
                         f"{MAX_FIELD_CHARS:,}")


def _check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise ValueError("the prompt is empty: say what the agent should do")
    check_prompt_size(prompt)


def check_prompt_size(prompt: str) -> None:
    """ValueError (an InvalidRequest) when the prompt is over :data:`MAX_PROMPT_BYTES`."""
    size = len(prompt.encode("utf-8", "surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidRequest(
            # Word for word what the MCP door says (mcp.tools.check_arguments).
            f"the prompt is {size:,} bytes of UTF-8: the limit is {MAX_PROMPT_BYTES:,}; put "
            "long material in a file in the working directory and refer to it"
        )


def _check_range(value: float | None, setting: str, what: str, unit: str) -> None:
    if value is None:
        return
    low, high = setting_bounds(setting)
    if not low <= value <= high:
        raise ValueError(f"{what} {_number(value)}{unit} is out of range: it must be "
                         f"between {_number(low)} and {_number(high)}{unit}")


def _check_budget(value: float | None) -> None:
    # The agent's own --max-budget-usd refuses 0, negatives and NaN (measured, claude
    # 2.1.197); the request is refused here so the task does not fail at its start.
    if value is None:
        return
    if not math.isfinite(value) or not 0 < value <= MAX_BUDGET_USD:
        raise ValueError(f"max budget {_number(value)} USD is out of range: it must be more "
                         f"than 0 and at most {_number(MAX_BUDGET_USD)} USD")


def _check_fallback(fallback: str | None, model: str | None) -> None:
    # The claude CLI itself takes the same model twice, but its Agent SDK refuses it
    # ("Fallback model cannot be the same as the main model"): falling back to the very
    # model that is overloaded would not help.
    if fallback is not None and fallback == model:
        raise ValueError(f"the fallback model {fallback!r} is the model itself: the agent "
                         "falls back to it when that model is overloaded, so give another")


def _number(value: float) -> str:
    whole = math.isfinite(value) and float(value).is_integer() and abs(value) < 1e15
    return str(int(value)) if whole else f"{value:g}"


def _check_pattern(value: str | None, pattern: re.Pattern[str], message: str) -> None:
    if value is not None and not pattern.match(value):
        raise ValueError(f"{value!r} {message}")


def validate_cwd(cwd: str) -> str:
    """Absolute, existing directory the agent can enter; InvalidRequest otherwise."""
    path = Path(os.path.expanduser(cwd or ".")).resolve()
    if not path.exists():
        raise InvalidRequest(f"working directory {path} does not exist: create it or pick another")
    if not path.is_dir():
        raise InvalidRequest(f"working directory {path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidRequest(f"working directory {path} is not accessible (check permissions)")
    return str(path)


def _inside_git_repository(path: Path) -> bool:
    """Whether ``path`` is in a git work tree, found the way git does (a ``.git`` entry
    in it or a parent), without loading git or GitPython into a short-lived CLI call."""
    return any((folder / ".git").exists() for folder in (path, *path.parents))


_FIELD_ORDER = tuple(TaskSpec.__dataclass_fields__)


def _in_field_order(problems: dict[str, str]) -> dict[str, str]:
    return dict(sorted(problems.items(), key=lambda item: _FIELD_ORDER.index(item[0])))


# -- front ends ------------------------------------------------------------------------------


def describe_problems(error: InvalidRequest, names: Mapping[str, str], *,
                      worktree: str) -> list[tuple[str, str]]:
    """Each problem as (the front end's name of the field, its message).

    ``names`` maps TaskSpec field names to the front end's (``{"timeout_s": "--timeout"}``);
    a field it lacks keeps its own name. ``worktree`` is how that front end asks for a
    worktree (``--worktree``, ``useWorktree: true``). An error without problems (refused
    for a reason no field owns, such as a missing agent binary) gives one ("", message).
    """
    if not error.problems:
        return [("", error.message)]
    return [(names.get(field, field), message.replace(WORKTREE_TOKEN, worktree))
            for field, message in error.problems.items()]
