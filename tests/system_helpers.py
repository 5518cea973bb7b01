"""Looking at and changing the machine around the tests: processes by environment marker,
and a small tmpfs to fill or remount. Shared by the leak check, the stop tests and the
disk-full tests so each reads /proc and mounts the same way."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def processes_with_env(entry: str) -> dict[int, str]:
    """Live processes (this one aside) whose environment holds ``entry`` (``NAME=value``):
    pid -> command line. Zombies, which have no command line, are left out."""
    wanted = entry.encode()
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if wanted not in environ.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        if command.strip():
            found[int(name)] = command.strip()
    return found


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path``, unmounted after (skips, saying why, where
    mounting is not allowed: it needs root, which CI has)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                              str(path)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)
