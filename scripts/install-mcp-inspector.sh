#!/usr/bin/env bash
# Install the pinned MCP Inspector (its CLI mode is the third-party client the MCP tests use)
# into <repo>/.mcp-inspector (git-ignored: node_modules/ and package*.json are ignored, and a
# local .gitignore ignores the rest). Idempotent: a no-op when the pinned version is there.
set -euo pipefail

INSPECTOR_VERSION="${INSPECTOR_VERSION:-0.17.2}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${REPO_ROOT}/.mcp-inspector"
PKG_JSON="${PREFIX}/node_modules/@modelcontextprotocol/inspector/package.json"

installed_version() {
    if [[ -f "${PKG_JSON}" ]]; then
        node -e "console.log(require(process.argv[1]).version)" "${PKG_JSON}" 2>/dev/null || true
    fi
}

if [[ "$(installed_version)" == "${INSPECTOR_VERSION}" ]]; then
    echo "MCP Inspector ${INSPECTOR_VERSION} already installed in ${PREFIX}"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm not found; install Node.js >= 18 first" >&2
    exit 1
fi

echo "installing @modelcontextprotocol/inspector@${INSPECTOR_VERSION} into ${PREFIX} ..."
mkdir -p "${PREFIX}"
printf '*\n' > "${PREFIX}/.gitignore"
npm install --prefix "${PREFIX}" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/inspector@${INSPECTOR_VERSION}"

got="$(installed_version)"
if [[ "${got}" != "${INSPECTOR_VERSION}" ]]; then
    echo "error: installed inspector is '${got}', expected ${INSPECTOR_VERSION}" >&2
    exit 1
fi
echo "MCP Inspector ${got} installed in ${PREFIX}"
