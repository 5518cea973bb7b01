#!/usr/bin/env bash
# Install the pinned real `claude` CLI into <repo>/.claude-cli (git-ignored) for the test suite.
#
# Why a pinned version: the stream-json contract claudine parses was measured on this version
# (see docs / tests/fakes/test_fakes.py); a floating version would make the suite drift.
# Why idempotent: CI and developers call it before every test run; a no-op costs ~0.1 s.
# The npm package ships a native binary in a platform sub-package; its postinstall only links
# it into place and downloads nothing else, so this works with only the npm registry reachable.
set -euo pipefail

CLAUDE_VERSION="${CLAUDE_VERSION:-2.1.197}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${REPO_ROOT}/.claude-cli"
BIN="${PREFIX}/node_modules/.bin/claude"

installed_version() {
    # Prints e.g. "2.1.197" or nothing when the binary is missing or broken.
    if [[ -x "${BIN}" ]]; then
        "${BIN}" --version 2>/dev/null | awk '{print $1}' || true
    fi
}

if [[ "$(installed_version)" == "${CLAUDE_VERSION}" ]]; then
    echo "claude ${CLAUDE_VERSION} already installed at ${BIN}"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm not found; install Node.js >= 18 first" >&2
    exit 1
fi

echo "installing @anthropic-ai/claude-code@${CLAUDE_VERSION} into ${PREFIX} ..."
mkdir -p "${PREFIX}"
# --no-audit/--no-fund: avoid extra registry round-trips and noise. npm 11 may warn that
# install scripts are not allowed; the native binary still works (checked just below).
npm install --prefix "${PREFIX}" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@${CLAUDE_VERSION}"

got="$(installed_version)"
if [[ "${got}" != "${CLAUDE_VERSION}" ]]; then
    echo "error: ${BIN} --version printed '${got}', expected ${CLAUDE_VERSION}" >&2
    exit 1
fi
"${BIN}" --version
