"""The explorer's web UI: a stdlib HTTP server with a JSON API and one static page.

    from stylegan_jax.explore import Explorer
    from stylegan_jax.explore.server import make_server, serve
    serve(Explorer.open("workdirs/demo"), port=8000)      # or: python -m experiments.explore

    with serving_in_background(make_server(explorer, port=0)) as server:   # tests: a free port
        ...                                                # (stylegan_jax.serving)

GET / serves static/index.html (plus app.js and style.css); GET /api/info and POST /api/<name>
call handlers.Api (see there for each endpoint's fields). A bad request (a ValueError from the
explorer API: unknown layer, channel out of range, malformed recipe or JSON) answers 400 with
{"error": one-line message}; an unknown endpoint 404, a wrong method 405, an oversized body 413,
an unexpected failure 500 -- the server keeps running in every case.
"""
import json
import logging
import os
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from stylegan_jax.explore.handlers import Api
from stylegan_jax.serving import serve_until_interrupted

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BODY = 64 << 20  # bytes
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
log = logging.getLogger(__name__)


class HttpError(Exception):
    """An error with its own HTTP status (ValueErrors are 400)."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server_version = "stylegan_jax-explorer/1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, method: str):
        path = urlsplit(self.path).path
        if not path.startswith("/api/"):
            return self._static(method, path)
        try:
            body = self._read_json() if method == "POST" else None
            status, reply = HTTPStatus.OK, self._call(method, path, body)
        except HttpError as e:
            status, reply = e.status, {"error": str(e)}
        except ValueError as e:
            status, reply = HTTPStatus.BAD_REQUEST, {"error": _one_line(e)}
        except Exception as e:  # pylint: disable=broad-except  (keep serving; say what broke)
            log.exception("%s %s failed", method, path)
            status, reply = HTTPStatus.INTERNAL_SERVER_ERROR, {
                "error": f"internal error in {path}: {type(e).__name__}: {_one_line(e)}"}
        return self._send(status, json.dumps(reply).encode("utf-8"), "application/json")

    def _call(self, method: str, path: str, body):
        api: Api = self.server.api
        name = path[len("/api/"):]
        if name == "info":
            if method != "GET":
                raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "use GET for /api/info")
            with api.lock:
                return api.info()
        if name not in api.endpoints:
            raise HttpError(HTTPStatus.NOT_FOUND, f"unknown endpoint {path}: the API has "
                            f"/api/info, {', '.join('/api/' + n for n in api.endpoints)}")
        if method != "POST":
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"use POST for {path}")
        with api.lock:
            return api.endpoints[name](body)

    def _read_json(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "bad Content-Length header") from None
        if length > MAX_BODY:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"request body of {length} bytes exceeds {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("request body is not UTF-8 text") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"request body is not valid JSON ({e.msg} at line {e.lineno} "
                             f"column {e.colno})") from None

    def _static(self, method: str, path: str):
        if path == "/favicon.ico":
            return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        name = "index.html" if path in ("/", "/index.html") else path.rsplit("/static/", 1)[-1]
        known = os.listdir(STATIC_DIR) if os.path.isdir(STATIC_DIR) else []
        if method != "GET" or not (path in ("/", "/index.html") or path.startswith("/static/")) \
                or name not in known:
            message = f"no page at {path}: open / for the explorer"
            return self._send(HTTPStatus.NOT_FOUND, json.dumps({"error": message}).encode(),
                              "application/json")
        with open(os.path.join(STATIC_DIR, name), "rb") as f:
            data = f.read()
        return self._send(HTTPStatus.OK, data,
                          _TYPES.get(os.path.splitext(name)[1], "application/octet-stream"))

    def _send(self, status: HTTPStatus, data: bytes, content_type: str):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            pass


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class ExplorerServer(ThreadingHTTPServer):
    """ThreadingHTTPServer holding the Api; `url` is where it listens."""
    daemon_threads = True
    block_on_close = False

    def __init__(self, explorer, address):
        self.api = Api(explorer)
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


def make_server(explorer, host: str = "127.0.0.1", port: int = 0) -> ExplorerServer:
    """A server for `explorer` bound to host:port (0 = a free port); call serve_forever()."""
    return ExplorerServer(explorer, (host, int(port)))


def serve(explorer, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False):
    """Serves the explorer until Ctrl-C."""
    server = make_server(explorer, host, port)
    serve_until_interrupted(server, f"explorer at {server.url} (Ctrl-C to stop)",
                            server.url if open_browser else "")
