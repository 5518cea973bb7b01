"""A running agent's inbox: messages for its next turn, in its run folder.

Stdlib only: the wrapper (which delivers) and the engine (which posts) both use it, and a
message must reach the agent with no engine alive. The run folder holds:

- ``inbox/<message id>.json``: a message waiting for delivery (written whole, then renamed
  in, so the wrapper never reads half of one);
- ``delivered/<message id>.json``: ``{"delivered_at": ...}``, written by the wrapper *before*
  it writes the message to the agent's stdin (at most once: a wrapper that dies between the
  two leaves a message marked delivered that the agent never read, never one read twice);
  ``delivered/prompt.json`` likewise for the first message, the task's prompt;
- ``inbox.closed``: the wrapper closed the agent's stdin (the conversation is over, or the
  agent ended); nothing posted after it can be delivered;
- ``inbox.lock``: an ``flock`` taken around "post unless closed" and "close if empty", so a
  message is either in the inbox before the wrapper looks for the last time, or refused.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

INBOX = "inbox"
DELIVERED = "delivered"
CLOSED = "inbox.closed"
LOCK = "inbox.lock"
PROMPT_KEY = "prompt"


def user_message_line(text: str) -> bytes:
    """One user turn as ``claude --input-format stream-json`` reads it (one JSON line)."""
    line = {"type": "user", "message": {"role": "user", "content": text}}
    return json.dumps(line).encode() + b"\n"


def logged_message_line(message_id: str, text: str) -> bytes:
    """How a delivered message is recorded among the agent's output lines: the shape of
    the CLI's own echo of a user turn, with the message id."""
    line = {"type": "user", "message": {"role": "user", "content": text},
            "claudine_message_id": message_id}
    return json.dumps(line).encode() + b"\n"


@contextmanager
def locked(run_dir: str) -> Iterator[None]:
    fd = os.open(os.path.join(run_dir, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def open_inbox(run_dir: str) -> None:
    """Make the inbox (the wrapper, before it starts the agent)."""
    for name in (INBOX, DELIVERED):
        os.makedirs(os.path.join(run_dir, name), mode=0o700, exist_ok=True)


def accepting(run_dir: str) -> bool:
    """Whether a message posted now would reach this run's agent."""
    return (os.path.isdir(os.path.join(run_dir, INBOX))
            and not os.path.exists(os.path.join(run_dir, CLOSED)))


def post(run_dir: str, message_id: str, text: str) -> bool:
    """Put a message in the inbox; False (nothing written) when the run takes no more."""
    with locked(run_dir):
        if not accepting(run_dir):
            return False
        final = os.path.join(run_dir, INBOX, f"{message_id}.json")
        tmp = os.path.join(run_dir, f".{message_id}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"id": message_id, "text": text}).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        return True


def post_once(run_dir: str, message_id: str, text: str) -> bool:
    """:func:`post`, except that a message already in the inbox or delivered is not posted
    again (True): an owner forwarding messages to another machine may repeat itself after
    a restart. (The wrapper marks a message delivered before it takes it out of the inbox,
    so one of the two files always shows it.)"""
    if os.path.exists(os.path.join(run_dir, INBOX, f"{message_id}.json")) or \
            delivered_at(run_dir, message_id) is not None:
        return True
    return post(run_dir, message_id, text)


def waiting(run_dir: str) -> list[tuple[str, str]]:
    """(id, text) of the messages not delivered yet, oldest first."""
    folder = os.path.join(run_dir, INBOX)
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".json")]
    except FileNotFoundError:
        return []
    found = []
    for entry in sorted(entries, key=lambda e: (e.stat().st_mtime_ns, e.name)):
        try:
            with open(entry.path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        found.append((str(record["id"]), str(record["text"])))
    return found


def mark_delivered(run_dir: str, key: str, at: float) -> None:
    """Record the delivery of ``key`` (a message id, or PROMPT_KEY) and take it out of the
    inbox. Called before the write to the agent's stdin: at most once."""
    path = os.path.join(run_dir, DELIVERED, f"{key}.json")
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"delivered_at": at}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(path + ".tmp", path)
    try:
        os.unlink(os.path.join(run_dir, INBOX, f"{key}.json"))
    except FileNotFoundError:
        pass


def delivered_at(run_dir: str, key: str) -> float | None:
    """When ``key`` was handed to the agent (None: not yet, or never)."""
    try:
        with open(os.path.join(run_dir, DELIVERED, f"{key}.json"), encoding="utf-8") as handle:
            return float(json.load(handle)["delivered_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def delivered_all(run_dir: str) -> dict[str, float]:
    """When each message (and PROMPT_KEY) handed to the agent was, by key."""
    try:
        keys = [e.name[:-5] for e in os.scandir(os.path.join(run_dir, DELIVERED))
                if e.name.endswith(".json")]
    except FileNotFoundError:
        return {}
    found = {key: delivered_at(run_dir, key) for key in keys}
    return {key: at for key, at in found.items() if at is not None}


def close(run_dir: str) -> None:
    """Mark the inbox closed (the caller holds the lock, or the agent has ended)."""
    fd = os.open(os.path.join(run_dir, CLOSED), os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
