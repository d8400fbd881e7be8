"""Property-based fuzz of the explorer's API from its own OpenAPI schema (schemathesis +
hypothesis): valid and invalid requests to every operation, sent over loopback to a live server,
must never answer 5xx, must answer strict JSON (no NaN), and the server must stay alive.

Both tests are slow: the short one sends a few hundred requests, the other thousands.
"""
import json
import time
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.server import make_server
from stylegan_jax.serving import serving_in_background


@pytest.fixture(scope="module")
def server():
    with serving_in_background(make_server(Explorer(random_bundle(seed=5), fast_compile=True),
                                           port=0)) as srv:
        yield srv


def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"the reply holds {name}, which is not JSON")
    return json.loads(text, parse_constant=refuse)


def fuzz(server, examples: int, seconds: float) -> dict:
    """Runs `examples` generated requests per operation and mode (positive: fits the schema,
    negative: breaks it), for at most `seconds` in all. Returns {"requests", "statuses"}."""
    assert server.url.startswith(("http://127.0.0.1:", "http://[::1]:"))  # loopback only
    schema = schemathesis.openapi.from_url(server.url + "openapi.json")
    statuses, deadline = {}, time.monotonic() + seconds
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def one(case):
                if time.monotonic() > deadline:
                    return
                response = case.call(base_url=server.url.rstrip("/"), timeout=120)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code < 500, (case.method, case.path, case.body,
                                                    response.text[:300])
                content_type = response.headers.get("content-type") or [""]  # a list of values
                if content_type[0].startswith("application/json"):
                    reply = strict_json(response.text)
                    if response.status_code >= 400:
                        assert isinstance(reply.get("error"), str) and "\n" not in reply["error"]
            try:
                one()
            except Unsatisfiable:  # nothing to break in an operation without inputs (GET /api/info)
                assert mode == GenerationMode.NEGATIVE
    return {"requests": sum(statuses.values()), "statuses": dict(sorted(statuses.items()))}


def assert_alive(server):
    with urllib.request.urlopen(server.url + "api/info", timeout=30) as response:
        assert response.status == 200


@pytest.mark.slow
def test_fuzz_short(server):  # about 20 s on 2 CPU cores (compiles included)
    result = fuzz(server, examples=8, seconds=120)
    assert result["requests"] >= 100, result
    assert_alive(server)


@pytest.mark.slow
def test_fuzz_thousands(server):
    result = fuzz(server, examples=150, seconds=1500)
    print("fuzz:", json.dumps(result))
    assert result["requests"] >= 2000, result
    assert_alive(server)
