"""Messages to a task's agent (``claudine send``, SendMessage, the console's ``m``).

A message is a row of the ``message`` table (migration v9), written before anything else
happens to it. Then, by the task's state:

- running, its conversation open: the message is posted to the run folder's inbox
  (agents/inbox.py); the task's wrapper writes it to the agent's stdin at once, so the
  agent reads it at its next turn (the real CLI even shows a message sent during a tool
  call to the model right after that tool's result). The wrapper records the delivery in
  the run folder; ``delivered_at`` is read from there, so it shows with no owner alive.
- finished (completed, failed, cancelled): the message continues the conversation as a
  resume (``TaskService.resume`` with the message as the follow-up), a new task; the
  row names it (``resume_task_id``) and the message counts as delivered when that task's
  agent reads its first turn.
- queued, blocked or parked: refused, with advice. It has no conversation yet, and a message
  that silently changed the prompt of a task that has not started would be a surprise.
- running but its conversation over (the agent's last turn ended, or the agent has not
  started yet): refused, with advice to send again once it has ended (then it becomes
  a resume) or started.
"""

from __future__ import annotations

import builtins
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import peewee

from claudine_core.agents import inbox
from claudine_core.errors import EXIT_USAGE, ClaudineError, InvalidTransition, StoreError
from claudine_core.models import TERMINAL_STATES, Task, TaskState, field_kind, field_types, iso_time
from claudine_core.store.db import describe_sqlite_error
from claudine_core.store.tables import _peewee_field
from claudine_core.task_request import MAX_PROMPT_BYTES

MAX_MESSAGE_BYTES = MAX_PROMPT_BYTES  # a message is a prompt for the next turn


class InvalidMessage(ClaudineError, ValueError):
    """The message's text cannot be sent (empty, too long)."""

    exit_status = EXIT_USAGE


def _field(default: Any = None, doc: str = "", *, time: bool = False, **column: Any) -> Any:
    """A declared message field (see claudine_core.models for the metadata)."""
    return field(default=default, metadata={"doc": doc, "time": time, "public": True,
                                            "carried": False, **column})


_NO_DEFAULT: Any = MISSING


@dataclass(frozen=True, kw_only=True)
class Message:
    """One message sent to a task's agent. Declared once: the table's columns (migration
    v9 creates exactly these) and the JSON shown by status/TaskStatus derive from it."""

    id: str = _field(_NO_DEFAULT, "Message id (msg-...).", unique=True)
    task_id: str = _field(_NO_DEFAULT, "The task it was sent to.", index=True)
    text: str = _field(_NO_DEFAULT, "What was sent.")
    created_at: float = _field(_NO_DEFAULT, "When it was sent.", time=True)
    attempt: int | None = _field(None, "The attempt (run folder) it was posted to, if any.")
    resume_task_id: str | None = _field(
        None, "The task that continues the conversation with it (sent to a finished task).")
    delivered_at: float | None = _field(
        None, "When the agent was handed it (null: not yet).", time=True)

    def to_json(self) -> dict[str, Any]:
        return {f.name: iso_time(getattr(self, f.name)) if f.metadata["time"]
                else getattr(self, f.name) for f in fields(Message)}


def new_message_id() -> str:
    return f"msg-{uuid.uuid4().hex[:12]}"


def message_columns() -> dict[str, peewee.Field]:
    hints = field_types(Message)
    return {f.name: _peewee_field(f, hints[f.name]) for f in fields(Message)}


def _read_row(data: dict[str, Any]) -> Message:
    hints = field_types(Message)
    values: dict[str, Any] = {}
    for declared in fields(Message):
        value = data.get(declared.name)
        kind, _ = field_kind(hints[declared.name])
        values[declared.name] = None if value is None else kind(value)
    return Message(**values)


class MessageRepo:
    """Message rows on one store; writes count in the task repo's ``writes``."""

    def __init__(self, db: peewee.SqliteDatabase, count_write: Callable[[], None]) -> None:
        self.db = db
        self._count_write = count_write

        meta = type("Meta", (), {"database": db, "table_name": "message"})
        self.Row: Any = type("MessageRow", (peewee.Model,), {**message_columns(), "Meta": meta})

    def insert(self, message: Message) -> None:
        self._write(lambda: self.Row.insert(
            **{f.name: getattr(message, f.name) for f in fields(Message)}).execute())

    def update(self, message_id: str, **values: Any) -> None:
        self._write(lambda: self.Row.update(**values).where(self.Row.id == message_id).execute())

    def delete(self, message_id: str) -> None:
        self._write(lambda: self.Row.delete().where(self.Row.id == message_id).execute())

    def for_task(self, task_id: str) -> builtins.list[Message]:
        rows = self.Row.select().where(self.Row.task_id == task_id).order_by(
            self.Row.created_at, self.Row.id)
        return [_read_row(row.__data__) for row in rows]

    def _write(self, operation: Callable[[], Any]) -> Any:
        self._count_write()
        try:
            return operation()
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc


def check_text(text: str) -> str:
    """The message as sent, or InvalidMessage naming what is wrong."""
    if not text.strip():
        raise InvalidMessage("message: the message is empty; give the text to send")
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"message: {size} bytes is more than the {MAX_MESSAGE_BYTES} "
                             "a message may have; send a shorter one, or put the text in a "
                             "file and tell the agent where it is")
    return text


class Messages:
    """Sending messages and reading their delivery (see the module docstring).

    ``resume`` is TaskService.resume; ``run_dir`` names a task attempt's run folder.
    """

    def __init__(self, repo: MessageRepo, *, resume: Callable[[str, str], Task],
                 run_dir: Callable[[str, int], Path], clock: Callable[[], float] = time.time,
                 ) -> None:
        self.repo = repo
        self._resume = resume
        self._run_dir = run_dir
        self._clock = clock

    def send(self, task: Task, text: str) -> Message:
        text = check_text(text)
        if task.status in TERMINAL_STATES:
            return self._send_as_resume(task, text)
        if task.status is TaskState.PARKED:
            raise InvalidTransition(
                f"task {task.short_id} is parked by a usage limit, its agent stopped: its "
                "conversation goes on at the reset; send the message once it runs again "
                f"('claudine release {task.short_id}' lets it go on now)")
        if task.status is not TaskState.RUNNING:
            raise InvalidTransition(
                f"task {task.short_id} is {task.status.value} and has no conversation yet: "
                "send the message once it runs, or cancel it and delegate it again with the "
                "text added to its prompt")
        return self._post(task, text)

    def _post(self, task: Task, text: str) -> Message:
        message = Message(id=new_message_id(), task_id=task.id, text=text,
                          created_at=self._clock(), attempt=task.attempt)
        self.repo.insert(message)  # the row first: a message is never posted unrecorded
        run_dir = str(self._run_dir(task.id, task.attempt))
        try:
            posted = os.path.isdir(run_dir) and inbox.post(run_dir, message.id, text)
        except OSError:
            posted = False
        if not posted:
            self.repo.delete(message.id)
            raise InvalidTransition(
                f"task {task.short_id} is running but its agent takes no more messages (it "
                "has not started yet, or its last turn has ended and it is finishing): send "
                "the message again in a moment; once the task has ended it continues the "
                "conversation as a resume")
        return message

    def _send_as_resume(self, task: Task, text: str) -> Message:
        message = Message(id=new_message_id(), task_id=task.id, text=text,
                          created_at=self._clock())
        self.repo.insert(message)
        try:
            resumed = self._resume(task.id, text)
        except BaseException:
            self.repo.delete(message.id)
            raise
        self.repo.update(message.id, resume_task_id=resumed.id, attempt=resumed.attempt + 1)
        return self._with_delivery(
            Message(**{**_as_dict(message), "resume_task_id": resumed.id,
                       "attempt": resumed.attempt + 1}))

    def for_task(self, task_id: str) -> list[Message]:
        """The task's messages, oldest first, each with its delivery as known now (read
        from the run folder, recorded in the row once seen)."""
        return [self._with_delivery(m) for m in self.repo.for_task(task_id)]

    def _with_delivery(self, message: Message) -> Message:
        if message.delivered_at is not None or message.attempt is None:
            return message
        if message.resume_task_id:
            folder, key = self._run_dir(message.resume_task_id, message.attempt), inbox.PROMPT_KEY
        else:
            folder, key = self._run_dir(message.task_id, message.attempt), message.id
        when = inbox.delivered_at(str(folder), key)
        if when is None:
            return message
        try:
            self.repo.update(message.id, delivered_at=when)
        except StoreError:
            pass  # a read must not fail on a busy store: the run folder still has it
        return Message(**{**_as_dict(message), "delivered_at": when})


    def may_still_arrive(self, message: Message) -> bool:
        """Whether an undelivered message can still reach the agent: False once the run it
        was posted to has closed its inbox (the agent ended first; send it again to resume
        the task)."""
        if message.delivered_at is not None or message.resume_task_id:
            return message.delivered_at is None
        if message.attempt is None:
            return False
        return inbox.accepting(str(self._run_dir(message.task_id, message.attempt)))


def _as_dict(message: Message) -> dict[str, Any]:
    return {f.name: getattr(message, f.name) for f in fields(Message)}


def describe(message: Message, *, now_open: bool = True) -> str:
    """One line for ``claudine status``: when, whether delivered, the text's start."""
    if message.delivered_at is not None:
        state = f"delivered {iso_time(message.delivered_at)}"
    elif message.resume_task_id:
        state = f"waiting: continues as task {message.resume_task_id}"
    else:
        state = ("waiting for the agent's next turn" if now_open
                 else "not delivered: the agent ended first")
    first_line = message.text.strip().splitlines()[0] if message.text.strip() else ""
    return f"{message.id} {state}: {first_line[:80]}"
