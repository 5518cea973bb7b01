"""Rewrite README.md's configuration table from the settings declarations
(claudine_core/config/specs.py).

Run after adding or changing a setting; tests/core/test_config.py fails until you do.
"""

from __future__ import annotations

from pathlib import Path

from claudine_core.config import setting_scope, settings_table

HEADER = "| setting (TOML key) | environment | default | scope | meaning |"
README = Path(__file__).resolve().parents[1] / "README.md"


def table() -> str:
    rows = [HEADER, "|---|---|---|---|---|"]
    for name, env, default, description in settings_table():
        rows.append(f"| `{name}` | {env} | {default} | {setting_scope(name)} | {description} |")
    return "\n".join(rows)


def main() -> None:
    text = README.read_text()
    start = text.index(HEADER)
    end = text.index("\n\n", start)
    README.write_text(text[:start] + table() + text[end:])


if __name__ == "__main__":
    main()
