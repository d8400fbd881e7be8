"""The explorer's web UI: a FastAPI app with a JSON API and one static page, served by uvicorn.

    from stylegan_jax.explore import Explorer
    from stylegan_jax.explore.server import make_server, serve
    serve(Explorer.open("workdirs/demo"), port=8000)      # or: python -m experiments.explore

    with serving_in_background(make_server(explorer, port=0)) as server:   # tests: a free port
        ...                                                # (stylegan_jax.serving)

GET / serves static/index.html (and static/*.js, *.css); GET /api/info, GET /api/ready_edits
(the model's ready-made sliders) and POST /api/<name> call handlers.Api; api_models.py describes every request and reply, published as OpenAPI at
/openapi.json and browsable at /docs (Swagger UI from the fastapi-offline package's files, served
from here: nothing is downloaded). Long work runs as a job: POST /api/jobs/export,
/api/jobs/apply_to_seeds, /api/jobs/sweep (seeds x amounts of one edit) or /api/jobs/project
(an uploaded image projected into W; its result is the w and the noise mode to edit it with)
answers 202 with {id, status, done, total, progress}; GET
/api/jobs/{id} polls it, GET /api/jobs/{id}/result downloads the file (or the images' JSON) and
DELETE /api/jobs/{id} cancels it (a running job stops after its current frame). Jobs run one at a
time on their own thread, rendering frame by frame, so renders and /api/info
answer while one runs.

Every answer is JSON, and every error is {"error": one line} (422s add "detail", one entry per
invalid field): 400 a request the model cannot use (unknown layer, channel out of range) or a
body that is not strict JSON (nested deeper than utils.JSON_MAX_DEPTH, NaN, huge integers); 403
a Host or Origin that is not this server's (DNS rebinding, other sites' pages); 404 an unknown
path; 405 a wrong method; 413 a body over MAX_BODY; 415 a POST body that is not
application/json; 422 a field out of its bounds or type, or a result that is not finite (named;
never sent as NaN); 429 too many waiting jobs; 500 an unexpected failure (logged; the server
keeps running).
"""
import inspect
import logging
import os
import re
import socket
import threading
from typing import Annotated, Iterable

import fastapi_offline
import uvicorn
from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from stylegan_jax.explore import api_models as m
from stylegan_jax.explore.handlers import Api, NonFinite, check_finite
from stylegan_jax.serving import JobQueue, QueueFull, serve_until_interrupted
from stylegan_jax.utils import parse_json

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
DOCS_DIR = os.path.join(os.path.dirname(fastapi_offline.__file__), "static")  # Swagger UI
MAX_BODY = 16 << 20  # bytes
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
log = logging.getLogger(__name__)
_ERRORS = {code: {"model": m.Error} for code in (400, 403, 413, 415, 422)}
_QUICK = {  # POST /api/<name>: (request model, reply model)
    "gallery": (m.GalleryRequest, m.Images), "render": (m.RenderRequest, m.Render),
    "channels": (m.ChannelsRequest, m.Channels), "propose": (m.ProposeRequest, m.Proposal),
    "direction": (m.DirectionRequest, m.DirectionReply),
    "factorize": (m.FactorizeRequest, m.FactorizeReply),
    "interpolate": (m.InterpolateRequest, m.Image), "mix": (m.MixRequest, m.Image),
    "apply_to_seeds": (m.ApplyToSeedsRequest, m.Images), "recipe": (m.RecipeRequest, m.RecipeReply),
    "load_png": (m.LoadPngRequest, m.LoadedPng), "export": (m.ExportRequest, m.Export),
    "sweep": (m.SweepRequest, m.Sweep), "locator": (m.LocatorRequest, m.LocatorReply)}
_JOBS = {"export": m.ExportRequest, "apply_to_seeds": m.ApplyToSeedsRequest,
         "project": m.ProjectRequest, "sweep": m.SweepRequest}


# ------------------------------------------------------------------ requests: JSON only, bounded
class _BoundedJSONRequest(Request):
    """A request whose body is read up to MAX_BODY bytes and parsed by utils.parse_json (depth,
    integer size and NaN checked before parsing)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            length = self.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
                raise HTTPException(413, f"request body of {length} bytes: at most {MAX_BODY} allowed")
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise HTTPException(413, f"request body over {MAX_BODY} bytes")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self):
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body(), "request body")
            except ValueError as e:
                raise HTTPException(400, str(e)) from None
        return self._json


class _JSONRoute(APIRoute):
    """POST bodies must be application/json (a page on another site can send text/plain cross
    site without asking); they are read by _BoundedJSONRequest."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request):
            if request.method == "POST":
                content_type = request.headers.get("content-type", "")
                if content_type.split(";")[0].strip().lower() != "application/json":
                    raise HTTPException(415, f"send the request body as JSON with Content-Type: "
                                             f"application/json (got {content_type or 'none'!r})")
            return await handler(_BoundedJSONRequest(request.scope, request.receive))
        return route


def allowed_hosts(port: int, extra: Iterable[str] = ()) -> set:
    """Host header values this server answers: 127.0.0.1, localhost and [::1] with its port,
    plus `extra` names (each with the port unless it gives one)."""
    hosts = set()
    for name in (*LOCAL_NAMES, *extra):
        name = name.strip().lower()
        if re.search(r"^[^:]+:\d+$|^\[.*\]:\d+$", name):
            hosts.add(name)
            continue
        hosts.add(f"{name}:{port}")
        if port == 80:
            hosts.add(name)
    return hosts


class _LocalOnly:
    """ASGI middleware: answers 403 unless Host is one of `hosts` and Origin (when sent) is
    http://<one of them>. A DNS-rebinding page reaches the server under its own host name, and
    other sites' pages send their own Origin."""

    def __init__(self, app, hosts, url: str):
        self.app, self.hosts, self.url = app, set(hosts), url
        self.origins = {"http://" + h for h in self.hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1").lower()
            origin = headers.get(b"origin")
            message = None
            if host not in self.hosts:
                name = host.rsplit(":", 1)[0] if host else ""
                message = (f"this explorer answers at {self.url} (Host {host!r} is not allowed): "
                           f"open it there" + (f", or start it with --allow_host={name}" if name else ""))
            elif origin is not None and origin.decode("latin-1").lower() not in self.origins:
                message = (f"requests from pages of {origin.decode('latin-1')!r} are not allowed: "
                           f"open the explorer at {self.url}")
            if message is not None:
                return await JSONResponse({"error": message}, 403)(scope, receive, send)
        return await self.app(scope, receive, send)


# ------------------------------------------------------------------ errors
def _where(loc) -> str:
    """A pydantic location as the field's path, e.g. "recipe.edits[0].amount" ("" = the body)."""
    parts = [p for p in loc if p != "body"]
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _field_errors(errors) -> list:
    """pydantic's errors as JSON-safe {field, message, type} (without the offending input)."""
    out = []
    for e in errors:
        message = str(e.get("msg", "")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            message = "unknown field (a typo?): see /docs for the fields"
        out.append({"field": _where(e.get("loc", ())), "message": " ".join(message.split()),
                    "type": e.get("type", "")})
    return out


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _install_error_handlers(app: FastAPI, api: Api):
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        detail = _field_errors(exc.errors())
        name = request.url.path.rsplit("/", 1)[-1]
        first = "; ".join((f"field {d['field']!r}" if d["field"] else "request body") +
                          f": {d['message']}" for d in detail[:3])
        more = f" (and {len(detail) - 3} more)" if len(detail) > 3 else ""
        return JSONResponse({"error": f"{name}: {first}{more}", "detail": detail}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        path = request.url.path
        message = exc.detail
        if exc.status_code == 404 and not isinstance(exc, HTTPException):
            message = (f"unknown endpoint {path}: the API has /api/info, "
                       f"{', '.join('/api/' + n for n in _QUICK)}, /api/jobs/... (see /docs)"
                       if path.startswith("/api/") else f"no page at {path}: open / for the explorer")
        elif exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed for {path}: use {allow or 'another method'}"
        return JSONResponse({"error": _one_line(Exception(message))}, exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(NonFinite)
    async def non_finite(request: Request, exc: NonFinite):
        return JSONResponse({"error": _one_line(exc), "detail": [
            {"field": exc.field, "message": "not finite", "type": "non_finite_result"}]}, 422)

    @app.exception_handler(ValueError)
    async def bad_request(request: Request, exc: ValueError):
        return JSONResponse({"error": _one_line(exc)}, 400)

    @app.exception_handler(QueueFull)
    async def busy(request: Request, exc: QueueFull):
        return JSONResponse({"error": _one_line(exc)}, 429)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):  # logged by the server as well
        return JSONResponse({"error": f"internal error in {request.url.path}: "
                                      f"{type(exc).__name__}: {_one_line(exc)}"}, 500)


def _job_error_reply(job) -> JSONResponse:
    error = job.error
    if isinstance(error, NonFinite):
        return JSONResponse({"error": _one_line(error)}, 422)
    if isinstance(error, ValueError):
        return JSONResponse({"error": _one_line(error)}, 400)
    return JSONResponse({"error": f"internal error in job {job.kind}: {type(error).__name__}: "
                                  f"{_one_line(error)}"}, 500)


# ------------------------------------------------------------------ the app
def _endpoint(function, request_model, name: str):
    """A sync FastAPI endpoint taking `request_model` as the JSON body; replies are checked to
    be finite."""
    def endpoint(req):
        return check_finite(function(req))
    endpoint.__signature__ = inspect.Signature(
        [inspect.Parameter("req", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=request_model)])
    endpoint.__name__ = name
    endpoint.__doc__ = inspect.getdoc(function)
    return endpoint


def create_app(api: Api, jobs: JobQueue, hosts, url: str) -> FastAPI:
    """The FastAPI app of the explorer's page and API (see the module docstring)."""
    app = FastAPI(title="stylegan_jax explorer", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json",
                  description="Look inside a generator and edit what it draws. Every error is "
                              "{\"error\": one line}; see stylegan_jax/explore/server.py.")
    app.router.route_class = _JSONRoute
    _install_error_handlers(app, api)
    app.add_middleware(_LocalOnly, hosts=hosts, url=url)

    @app.get("/api/info", response_model=m.Info, responses=_ERRORS)
    def info():
        """The model (layers, sizes, provenance with file names only) and the API's limits."""
        return check_finite(api.info())

    @app.get("/api/ready_edits", response_model=m.ReadyEdits, responses=_ERRORS)
    def ready_edits():
        """The model's ready-made sliders (a recipe), or null."""
        return check_finite(api.ready_edits())

    for name, (request_model, reply_model) in _QUICK.items():
        app.post(f"/api/{name}", response_model=reply_model, responses=_ERRORS)(
            _endpoint(getattr(api, name), request_model, name))

    def job_starter(kind, request_model):
        prepare = getattr(api, f"{kind}_work")

        def start(req):
            work = prepare(req)  # a bad request answers now, not when the job runs
            return jobs.submit(kind, work).describe()
        start.__doc__ = (f"Starts {kind} as a job (202); poll GET /api/jobs/{{id}}, then GET "
                         f"/api/jobs/{{id}}/result. {inspect.getdoc(prepare)}")
        return _endpoint(start, request_model, f"start_{kind}")

    for kind, request_model in _JOBS.items():
        app.post(f"/api/jobs/{kind}", status_code=202, response_model=m.Job,
                 responses={**_ERRORS, 429: {"model": m.Error}})(job_starter(kind, request_model))

    JobId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the id POST gave")]

    def find_job(job_id, lookup=jobs.get):
        """The job (lookup: jobs.get, or jobs.cancel to cancel it too); 404 if unknown."""
        job = lookup(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}: it finished long ago or never started")
        return job

    @app.get("/api/jobs/{job_id}", response_model=m.Job, responses={404: {"model": m.Error}})
    def job_status(job_id: JobId):
        """A job's state: queued, running (done of total), done (result ready) or failed."""
        job = find_job(job_id)
        reply = job.describe()
        if job.status == "done":
            reply["result"] = f"/api/jobs/{job.id}/result"
        return reply

    @app.delete("/api/jobs/{job_id}", response_model=m.Job, responses={404: {"model": m.Error}})
    def cancel_job(job_id: JobId):
        """Cancels a job: a queued one at once, a running one after its current frame or image
        (poll until its status is "cancelled"); a finished job is left as it is."""
        return find_job(job_id, jobs.cancel).describe()

    @app.get("/api/jobs/{job_id}/result", responses={
        200: {"content": {"image/gif": {}, "video/mp4": {}, "image/png": {}, "application/json": {}},
              "description": "an export's file, or apply_to_seeds' {images}"},
        409: {"model": m.Error}, 404: {"model": m.Error}, 400: {"model": m.Error}})
    def job_result(job_id: JobId):
        """A finished job's result: the exported file (as a download) or {images}."""
        job = find_job(job_id)
        if job.status == "failed":
            return _job_error_reply(job)
        if job.status == "cancelled":
            raise HTTPException(409, f"job {job.id} was cancelled: start it again for a result")
        if job.status != "done":
            raise HTTPException(409, f"job {job.id} is {job.status} ({job.done} of {job.total}): "
                                     f"poll /api/jobs/{job.id} until it is done")
        if job.kind == "export":
            filename, mime, data = job.result
            return Response(data, media_type=mime,
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        return JSONResponse(check_finite(job.result))

    # The page and the API's documentation.
    @app.get("/", include_in_schema=False)
    @app.get("/index.html", include_in_schema=False)
    def page():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"), headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in os.listdir(STATIC_DIR):
            raise StarletteHTTPException(404)
        return FileResponse(os.path.join(STATIC_DIR, name), headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    app.mount("/docs/static", StaticFiles(directory=DOCS_DIR), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="stylegan_jax explorer API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})  # no badge from an outside validator
    return app


# ------------------------------------------------------------------ the server
class ExplorerServer:
    """The explorer's app on a bound socket, run by uvicorn; `url` is where it listens.

    Works like socketserver's servers for stylegan_jax.serving: serve_forever() (blocks),
    shutdown() (from another thread), server_close()."""

    def __init__(self, explorer, host: str = "127.0.0.1", port: int = 0, allow_hosts=(),
                 distance=None, face_detector=None, ready_edits=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, int(port)), family=family)
        self.server_address = self.socket.getsockname()[:2]
        self.api = Api(explorer, distance, face_detector, ready_edits)
        self.jobs = JobQueue()
        self.app = create_app(self.api, self.jobs, allowed_hosts(self.server_address[1], allow_hosts),
                              self.url)
        self._uvicorn = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", ws="none",
            http="h11", loop="asyncio", timeout_graceful_shutdown=2))
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def url(self) -> str:
        host, port = self.server_address
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def serve_forever(self):
        """Serves until shutdown() (or Ctrl-C in the main thread)."""
        self._stopped.clear()
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self):
        """Stops serve_forever and waits for it."""
        self._uvicorn.should_exit = True
        self._stopped.wait(30)

    def server_close(self):
        """Stops the job worker and closes the socket."""
        self.jobs.close()
        self.socket.close()


def make_server(explorer, host: str = "127.0.0.1", port: int = 0, allow_hosts=(),
                distance=None, face_detector=None, ready_edits=None) -> ExplorerServer:
    """A server for `explorer` bound to host:port (0 = a free port); call serve_forever().
    allow_hosts: more Host names it answers to (besides 127.0.0.1, localhost and [::1]);
    distance, face_detector: for projecting uploaded images; ready_edits: the model's
    ready-made sliders (handlers.Api)."""
    return ExplorerServer(explorer, host, port, allow_hosts, distance, face_detector, ready_edits)


def serve(explorer, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False,
          allow_hosts=(), distance=None, face_detector=None, ready_edits=None,
          warm_up: bool = False):
    """Serves the explorer until Ctrl-C; warm_up: compile the common programs in the background
    once the socket is bound (Explorer.start_warm_up), so that the warm-up's tracing does not
    delay the server's own start."""
    server = make_server(explorer, host, port, allow_hosts, distance, face_detector, ready_edits)
    if warm_up:
        explorer.start_warm_up()
    serve_until_interrupted(server, f"explorer at {server.url} (Ctrl-C to stop; API: "
                                    f"{server.url}docs)", server.url if open_browser else "")
