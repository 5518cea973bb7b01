"""A fake GitHub REST API on 127.0.0.1 for pull-request tests (PyGithub with a custom base URL).

It answers ``GET /repos/{owner}/{name}`` and ``POST /repos/{owner}/{name}/pulls`` under an
optional prefix (``/api/v3`` as on GitHub Enterprise) and records every request::

    with FakeGitHub() as gh:
        config.github_api_url = gh.api_url        # http://127.0.0.1:PORT/api/v3
        ...
        request = gh.requests[-1]                 # method, path, headers, json
        assert request["json"]["head"] == "claudine/..."

``fail_with`` = (status, message) makes the pulls endpoint answer with that error.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/api/v3"


class FakeGitHub:
    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.requests: list[dict[str, Any]] = []
        self.pulls: list[dict[str, Any]] = []
        self.fail_with: tuple[int, str] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + self.prefix

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:  # noqa: N802
                fake._handle(self, "PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling --------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = {"method": method, "path": handler.path,
                  "headers": {k.lower(): v for k, v in handler.headers.items()}, "json": body}
        self.requests.append(record)
        path = handler.path.split("?", 1)[0]
        if not path.startswith(self.prefix + "/repos/"):
            return self._reply(handler, 404, {"message": "Not Found"})
        parts = path.removeprefix(self.prefix + "/repos/").strip("/").split("/")
        if len(parts) < 2:
            return self._reply(handler, 404, {"message": "Not Found"})
        full_name = "/".join(parts[:2])
        if method == "GET" and len(parts) == 2:
            return self._reply(handler, 200, self._repo_json(full_name))
        if method == "POST" and parts[2:] == ["pulls"]:
            if self.fail_with:
                status, message = self.fail_with
                return self._reply(handler, status, {"message": message})
            return self._reply(handler, 201, self._new_pull(full_name, body or {}))
        return self._reply(handler, 404, {"message": "Not Found"})

    def _repo_json(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {"id": 1, "name": name, "full_name": full_name, "owner": {"login": owner},
                "url": f"{self.api_url}/repos/{full_name}",
                "html_url": f"{self.url}/{full_name}"}

    def _new_pull(self, full_name: str, body: dict[str, Any]) -> dict[str, Any]:
        number = len(self.pulls) + 1
        pull = {
            "id": 1000 + number, "number": number, "state": "open",
            "title": body.get("title"), "body": body.get("body"),
            "head": {"ref": body.get("head")}, "base": {"ref": body.get("base")},
            "url": f"{self.api_url}/repos/{full_name}/pulls/{number}",
            "html_url": f"{self.url}/{full_name}/pull/{number}",
        }
        self.pulls.append(pull)
        return pull

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
