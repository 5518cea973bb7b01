#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run all of it.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# The ray extra too: the ray tier starts a head and two worker nodes on loopback.
python3 -m pip install --quiet --disable-pip-version-check -e '.[test,ray]'
bash scripts/install-claude-cli.sh            # the real `claude` CLI, pinned, into .claude-cli/
if [ -f scripts/install-mcp-inspector.sh ]; then
  bash scripts/install-mcp-inspector.sh       # the MCP Inspector CLI, pinned, into .mcp-inspector/
fi
if ! command -v tmux >/dev/null 2>&1; then    # the console's end-to-end test drives tmux
  apt-get update -qq && apt-get install -y -qq tmux
fi

unset NO_COLOR                                 # snapshot tests compare colours
python3 -m ruff check claudine_core claudine_tui tests bench scripts
python3 -m mypy
lint-imports                                   # the layer contracts in pyproject.toml
python3 -m pytest -q -p no:cacheprovider "$@"
