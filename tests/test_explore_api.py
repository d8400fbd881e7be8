"""The explorer's HTTP API against hostile and malformed requests: each case answers a 4xx with a
one-line message naming the field (never a 500), quickly, and the server keeps answering.

PNGs are written byte by byte in the real format (signature, IHDR, tEXt, IDAT, IEND with CRCs),
so a 20000x20000 image costs a few bytes to send.
"""
import base64
import http.client
import json
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib

import pytest

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.handlers import NonFinite, check_finite
from stylegan_jax.explore.server import MAX_BODY, make_server
from stylegan_jax.serving import serving_in_background

LAYER = "16x8_conv1"  # 16x8, 16 channels in random_bundle's default generator
BIG = 10 ** 400


@pytest.fixture(scope="module")
def server():
    explorer = Explorer(random_bundle(seed=3), fast_compile=True)
    explorer.provenance["source"] = "/some/secret/folder/generator.npz"
    with serving_in_background(make_server(explorer, port=0)) as srv:
        yield srv


def call(server, path, body=None, *, method=None, headers=None):
    """(status, raw reply bytes, seconds) of one request; a dict/list body is sent as JSON, a str
    as it is."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(server.url + path.lstrip("/"), data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, response.read(), time.perf_counter() - start
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.perf_counter() - start


def strict(raw: bytes):
    """The reply parsed as standard JSON (NaN and Infinity are refused, as browsers do)."""
    def refuse(name):
        raise AssertionError(f"the reply holds {name}, which is not JSON")
    return json.loads(raw, parse_constant=refuse)


def recipe(**edit):
    return {"format": "stylegan_jax.recipe", "version": 1,
            "edits": [{"layer": LAYER, "channels": "1", **edit}]}


def png(width, height, text=None) -> str:
    """A PNG data URL with an IHDR of width x height (only a few rows of pixel data: a reader
    must refuse it from the header, before decoding) and an optional explorer metadata chunk."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if text is not None:
        out += chunk(b"tEXt", b"stylegan_jax\x00" + text.encode())
    rows = b"".join(b"\x00" + b"\x80" * 3 * width for _ in range(min(height, 4)))
    out += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(out).decode()


CASES = [  # (name, path, body as JSON text or object, status, words of the message)
    # 400-digit integers in numeric fields
    ("bigint seed", "/api/gallery", '{"seeds": [%d]}' % BIG, 422,
     "field 'seeds[0]': Input should be less than or equal to 4294967295"),
    ("bigint psi", "/api/render", '{"seed": 1, "psi": %d}' % BIG, 422, "field 'psi'"),
    ("bigint crossover", "/api/mix", '{"a": {"seed": 1}, "b": {"seed": 2}, "crossover": %d}' % BIG,
     422, "field 'crossover': Input should be less than or equal to"),
    ("bigint toggle", "/api/channels", '{"layer": "%s", "toggle": %d}' % (LAYER, BIG), 422,
     "field 'toggle'"),
    ("bigint frames", "/api/export", '{"kind": "gif", "seed": 1, "frames": %d}' % BIG, 422,
     "field 'frames'"),
    ("bigint amount", "/api/render",
     json.dumps({"seed": 1, "recipe": recipe(amount=7)}).replace("7", str(BIG)), 422,
     "field 'recipe.edits[0].amount'"),
    ("bigint max_shift", "/api/recipe", json.dumps({"recipe": {
        "format": "stylegan_jax.recipe", "version": 1,
        "locators": {"x": {"layer": LAYER, "channels": "1", "max_shift": 7}}}}).replace("7", str(BIG)),
     422, "field 'recipe.locators.x.max_shift'"),
    ("5000-digit integer", "/api/gallery", '{"seeds": [%s]}' % ("9" * 5000), 400,
     "request body holds an integer of 5000 digits"),
    # deep nesting: refused before parsing
    ("nested body", "/api/render", "[" * 50000, 400, "request body nests arrays/objects 50000 deep"),
    ("nested recipe object", "/api/render", '{"seed": 1, "recipe": ' + "[" * 50000, 400,
     "request body nests arrays/objects 50001 deep"),
    ("nested recipe string", "/api/recipe", {"recipe": "[" * 50000}, 422,
     "field 'recipe': recipe nests arrays/objects 50000 deep"),
    ("nested PNG metadata", "/api/load_png", {"data": png(8, 8, "[" * 50000)}, 400,
     "the image's explorer metadata nests arrays/objects 50000 deep"),
    # direction layers
    ("direction layers 1e400", "/api/direction",
     '{"with": [{"seed": 1}], "without": [{"seed": 2}], "layers": [0, 1e400]}', 422,
     "field 'layers[1]': Input should be a valid integer"),
    ("direction layers {}", "/api/direction",
     '{"with": [{"seed": 1}], "without": [{"seed": 2}], "layers": {}}', 422,
     "field 'layers': Input should be a valid"),
    ("recipe direction layers {}", "/api/recipe", {"recipe": {
        "format": "stylegan_jax.recipe", "version": 1,
        "directions": [{"vector": [0.0] * 16, "layers": {}}]}}, 422,
     "field 'recipe.directions[0].layers'"),
    ("recipe direction layers 1e400", "/api/recipe",
     '{"recipe": {"format": "stylegan_jax.recipe", "version": 1, "directions": '
     '[{"vector": [0], "layers": [0, 1e400]}]}}', 422, "field 'recipe.directions[0].layers[1]'"),
    ("direction layers out of range", "/api/direction",
     {"with": [{"seed": 1}], "without": [{"seed": 2}], "layers": [0, 99]}, 400,
     "layers [0, 99] must satisfy 0 <= start < stop <= 6"),
    # PNGs
    ("data URL without a comma", "/api/load_png", {"data": "data:image/png;base64"}, 400,
     "field 'data' must be a data URL like data:image/png;base64,<data>"),
    ("PNG metadata is a list", "/api/load_png", {"data": png(8, 8, "[1, 2]")}, 400,
     "the image's explorer metadata must be an object"),
    ("PNG metadata NaN", "/api/load_png", {"data": png(8, 8, '{"settings": NaN}')}, 400,
     "holds NaN, which is not JSON"),
    ("PNG recipe channel range", "/api/load_png", {"data": png(8, 8, json.dumps(
        {"recipe": recipe(channels="0-1073741823")}))}, 400, "channel 1073741823 out of range"),
    ("PNG recipe amount 1e39", "/api/load_png", {"data": png(8, 8, json.dumps(
        {"recipe": recipe(amount=1e39)}))}, 400,
     "the image's recipe is invalid at edits.0.amount: Input should be less than or equal to"),
    ("20000x20000 PNG", "/api/load_png", {"data": png(20000, 20000)}, 400,
     "the image has more than 16777216 pixels"),
    ("4097x4097 PNG", "/api/load_png", {"data": png(4097, 4097)}, 400, "more than 16777216 pixels"),
    # channel ranges are bounded before they are expanded
    ("channels 0-4000000", "/api/channels", {"layer": LAYER, "text": "0-4000000"}, 400,
     "channel 4000000 out of range: this layer has 16 channels"),
    ("recipe channels 0-1073741823", "/api/recipe", {"recipe": recipe(channels="0-1073741823")},
     400, "channel 1073741823 out of range"),
    ("locator channels 0-1073741823", "/api/render", {"seed": 1, "recipe": {
        "format": "stylegan_jax.recipe", "version": 1,
        "locators": {"x": {"layer": LAYER, "channels": "0-1073741823"}}}}, 400,
     "channel 1073741823 out of range"),
    ("channels of an unknown layer", "/api/recipe",
     {"recipe": {**recipe(), "edits": [{"layer": "nope", "channels": "0-1073741823"}]}}, 400,
     "unknown layer 'nope'"),
    ("multiplier 1e400", "/api/channels", {"layer": LAYER, "text": "1*1e400"}, 400,
     "bad multiplier in '1*1e400'"),
    # numbers that overflow float32
    ("amount 1e39", "/api/render", {"seed": 1, "layer": LAYER, "recipe": recipe(amount=1e39)}, 422,
     "field 'recipe.edits[0].amount': Input should be less than or equal to 1000000"),
    ("amount 1e400", "/api/render", '{"seed": 1, "recipe": {"format": "stylegan_jax.recipe", '
     '"version": 1, "edits": [{"layer": "16x8_conv1", "channels": "1", "amount": 1e400}]}}', 422,
     "field 'recipe.edits[0].amount': Input should be a finite number"),
    ("NaN in the body", "/api/render", '{"seed": 1, "psi": NaN}', 400,
     "request body holds NaN, which is not JSON"),
    # wrong types
    ("seed as a string", "/api/gallery", {"seeds": ["1"]}, 422,
     "field 'seeds[0]': Input should be a valid integer"),
    ("bool as a seed", "/api/render", {"seed": True}, 422, "field 'seed': Input should be a valid integer"),
    ("too many seeds", "/api/gallery", {"seeds": list(range(65))}, 422,
     "field 'seeds': List should have at most 64 items"),
    ("scale 17", "/api/export", {"kind": "gif", "seed": 1, "scale": 17}, 422, "field 'scale'"),
    ("frames 241", "/api/export", {"kind": "gif", "seed": 1, "frames": 241}, 422, "field 'frames'"),
    ("walk of too many frames", "/api/export",
     {"kind": "gif", "animation": "interpolation", "seeds": [1, 2, 3], "frames": 200}, 400,
     "too many frames: at most 240 in all"),
    ("mask too large", "/api/render", {"seed": 1, "layer": LAYER, "selection": [[0.0]] * 1025}, 422,
     "field 'selection': List should have at most 1024 items"),
    ("unknown field", "/api/gallery", {"seeds": [1], "sedes": 2}, 422, "field 'sedes': unknown field"),
    ("empty body", "/api/gallery", "", 422, "request body: Field required"),
]


@pytest.mark.parametrize("name, path, body, status, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_answers_4xx_naming_the_field(server, name, path, body, status, message):
    got, raw, seconds = call(server, path, body)
    reply = strict(raw)
    assert (got, message in reply["error"]) == (status, True), (name, got, reply["error"])
    assert "\n" not in reply["error"] and len(reply["error"]) < 1000
    assert seconds < 10, f"{name} took {seconds:.1f} s"
    if status == 422 and "detail" in reply:
        assert all(set(d) == {"field", "message", "type"} for d in reply["detail"])
    assert call(server, "/api/info")[0] == 200


def test_channel_ranges_are_checked_before_they_are_expanded(server):
    # Expanding 0-1073741823 takes minutes and tens of GB; refused at once instead.
    for path, body in (("/api/channels", {"layer": LAYER, "text": "0-1073741823"}),
                       ("/api/render", {"seed": 1, "recipe": recipe(channels="0-1073741823")})):
        status, _, seconds = call(server, path, body)
        assert status == 400 and seconds < 1.0, (path, seconds)


def test_replies_are_strict_json_and_non_finite_results_are_named():
    assert check_finite({"a": [1.0, {"b": 2}]}) == {"a": [1.0, {"b": 2}]}
    with pytest.raises(NonFinite, match=r"the result's reply.maps.values\[1\] is not finite"):
        check_finite({"maps": {"values": [1.0, float("nan")]}})
    with pytest.raises(NonFinite, match="reply.scale"):
        check_finite({"scale": float("inf")})


def test_largest_allowed_numbers_give_finite_json_or_a_named_422(server):
    mask = [[1e6] * 8] * 16
    body = {"seed": 1, "layer": LAYER, "sort": "magnitude",
            "recipe": recipe(amount=1e6, channels="0-15*1e6", mask=mask)}
    status, raw, _ = call(server, "/api/render", body)
    reply = strict(raw)  # never NaN / Infinity in the JSON
    assert status == 200 or (status == 422 and "is not finite" in reply["error"]), reply


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_answer_405_json(server, method):
    for path in ("/api/gallery", "/api/info"):
        status, raw, _ = call(server, path, {"seeds": [1]}, method=method)
        assert status == 405 and f"{method} is not allowed for {path}: use" in strict(raw)["error"]


def test_bodies_must_be_json(server):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, raw, _ = call(server, "/api/gallery", '{"seeds": [1]}',
                              headers={"Content-Type": content_type})
        assert status == 415 and "Content-Type: application/json" in strict(raw)["error"]
    status, _, _ = call(server, "/api/gallery", '{"seeds": [1]}',
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 200


def test_oversized_bodies_answer_413_before_they_are_read(server):
    connection = http.client.HTTPConnection(*server.server_address, timeout=60)
    connection.putrequest("POST", "/api/load_png")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_BODY + 1))
    connection.endheaders(b'{"data": "AAAA')  # the rest is never sent: the header suffices
    response = connection.getresponse()
    assert response.status == 413 and "at most" in strict(response.read())["error"]
    connection.close()


def test_host_and_origin_are_checked(server):
    port = server.server_address[1]
    for host in ("evil.example:%d" % port, "127.0.0.1.nip.io:%d" % port, "localhost:1"):
        status, raw, _ = call(server, "/api/info", headers={"Host": host})
        assert status == 403 and "is not allowed" in strict(raw)["error"], host
    status, raw, _ = call(server, "/api/gallery", {"seeds": [1]},
                          headers={"Origin": "http://evil.example"})
    assert status == 403 and "'http://evil.example' are not allowed" in strict(raw)["error"]
    for host in ("127.0.0.1", "localhost", "[::1]"):
        status, _, _ = call(server, "/api/gallery", {"seeds": [1]},
                            headers={"Host": f"{host}:{port}", "Origin": f"http://{host}:{port}"})
        assert status == 200, host
    status, raw, _ = call(server, "/api/info")
    assert strict(raw)["provenance"]["source"] == "generator.npz"  # no absolute path


def test_allow_host_adds_a_name(server):
    with serving_in_background(make_server(server.api.ex, port=0, allow_hosts=["mybox.local"])) as srv:
        port = srv.server_address[1]
        assert call(srv, "/api/info", headers={"Host": f"mybox.local:{port}"})[0] == 200
        assert call(srv, "/api/info", headers={"Host": f"other.local:{port}"})[0] == 403


def test_openapi_and_docs_are_served_without_outside_urls(server):
    status, raw, _ = call(server, "/openapi.json")
    schema = strict(raw)
    assert status == 200 and schema["openapi"].startswith("3.")
    assert {"/api/info", "/api/render", "/api/jobs/export", "/api/jobs/{job_id}"} <= set(schema["paths"])
    render = schema["components"]["schemas"]["RenderRequest"]
    assert render["additionalProperties"] is False and "seed" in render["properties"]
    status, raw, _ = call(server, "/docs")
    html = raw.decode()
    assert status == 200 and "swagger-ui" in html
    assert "https://" not in html and "http://" not in html.replace("http://www.w3.org", "")
    for asset in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"):
        assert asset in html and call(server, asset)[0] == 200


@pytest.mark.slow  # about 6 s
def test_exports_run_as_jobs_while_quick_requests_answer(server):
    """A 240-frame GIF, enlarged 16 times, runs as a job: /api/info and renders answer while it
    runs; its progress rises and its result downloads as the file."""
    edit = recipe(amount=2.0, channels="0-15")
    assert call(server, "/api/render", {"seed": 2})[0] == 200  # compiled before the timing
    status, raw, _ = call(server, "/api/jobs/export", {"kind": "gif", "seed": 1, "recipe": edit,
                                                       "frames": 240, "scale": 16})
    job = strict(raw)
    assert status == 202 and job["status"] in ("queued", "running"), job
    quick, seen = [], []
    while True:
        state = strict(call(server, f"/api/jobs/{job['id']}")[1])
        seen.append(state["done"])
        if state["status"] not in ("queued", "running"):
            break
        if len(quick) < 5:
            quick.append(max(call(server, "/api/info")[2],
                             call(server, "/api/render", {"seed": 2})[2]))
        time.sleep(0.05)
    assert state["status"] == "done" and state["result"] == f"/api/jobs/{job['id']}/result", state
    assert quick and max(quick) < 2.0, quick  # the lock-holding export made these wait 20+ s
    assert seen == sorted(seen) and state["done"] == state["total"] == 240
    status, data, _ = call(server, state["result"])
    assert status == 200 and data[:6] == b"GIF89a"


def test_jobs_report_bad_requests_at_once_and_unknown_ids(server):
    status, raw, _ = call(server, "/api/jobs/export", {"kind": "gif", "seed": 1})
    assert status == 400 and "add an edit first" in strict(raw)["error"]
    status, raw, _ = call(server, "/api/jobs/" + "0" * 32)
    assert status == 404 and "no job" in strict(raw)["error"]
    assert call(server, "/api/jobs/not-an-id")[0] == 422
    status, raw, _ = call(server, "/api/jobs/apply_to_seeds", {"seeds": [1, 2]})
    job = strict(raw)
    while job["status"] in ("queued", "running"):
        time.sleep(0.05)
        job = strict(call(server, f"/api/jobs/{job['id']}")[1])
    status, raw, _ = call(server, job["result"])
    assert status == 200 and len(strict(raw)["images"]) == 2


def _wait_while(server, job_id, statuses=("queued", "running"), until_done=None):
    """The job's state once its status leaves `statuses` (or, with until_done, once it has done
    that many items)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = strict(call(server, f"/api/jobs/{job_id}")[1])
        if state["status"] not in statuses or (until_done is not None and state["done"] >= until_done):
            return state
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {state}")


def test_jobs_can_be_cancelled_queued_or_running(server):
    """DELETE /api/jobs/{id}: a running 240-frame export stops after its current frame, one
    queued behind it never starts; their results answer 409; a finished job is left as it is."""
    body = {"kind": "gif", "seed": 1, "recipe": recipe(amount=2.0, channels="0-15"),
            "frames": 240, "scale": 16, "animation": "oscillation"}
    running = strict(call(server, "/api/jobs/export", body)[1])
    queued = strict(call(server, "/api/jobs/export", body)[1])
    assert _wait_while(server, running["id"], until_done=2)["status"] == "running"
    status, raw, _ = call(server, f"/api/jobs/{queued['id']}", method="DELETE")
    assert status == 200 and strict(raw)["status"] == "cancelled" and strict(raw)["done"] == 0
    status, raw, _ = call(server, f"/api/jobs/{running['id']}", method="DELETE")
    assert status == 200 and strict(raw)["status"] in ("running", "cancelled")
    state = _wait_while(server, running["id"], ("running",))
    assert state["status"] == "cancelled" and 2 <= state["done"] < 240, state
    assert strict(call(server, f"/api/jobs/{queued['id']}")[1])["status"] == "cancelled"
    for job in (running, queued):
        status, raw, _ = call(server, f"/api/jobs/{job['id']}/result")
        assert status == 409 and "was cancelled" in strict(raw)["error"]
    finished = strict(call(server, "/api/jobs/apply_to_seeds", {"seeds": [3]})[1])
    assert _wait_while(server, finished["id"])["status"] == "done"
    status, raw, _ = call(server, f"/api/jobs/{finished['id']}", method="DELETE")
    assert status == 200 and strict(raw)["status"] == "done"
    assert call(server, f"/api/jobs/{finished['id']}/result")[0] == 200
    status, raw, _ = call(server, "/api/jobs/" + "0" * 32, method="DELETE")
    assert status == 404 and "no job" in strict(raw)["error"]


def test_many_concurrent_requests_keep_the_server_alive(server):
    replies = []

    def one(i):
        replies.append(call(server, "/api/gallery", {"seeds": [i]})[0])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies == [200] * 20
