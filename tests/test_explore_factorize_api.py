"""POST /api/factorize (SeFa / GANSpace directions) and the per-layer statistics of /api/render's
maps, against explore.factorize and numpy on Explorer.features."""
import numpy as np
import pytest

from stylegan_jax.explore import Explorer, factorize, parse_channels, random_bundle
from stylegan_jax.explore.server import make_server
from stylegan_jax.serving import serving_in_background
from test_explore_server import call as post

LAYER = "16x8_conv1"  # layer 3: 16x8, 16 channels


@pytest.fixture(scope="module")
def served():
    explorer = Explorer(random_bundle(seed=3), fast_compile=True)
    with serving_in_background(make_server(explorer, port=0)) as srv:
        yield srv, explorer


def test_factorize_returns_recipe_directions_like_the_python_api(served):
    server, ex = served
    status, reply = post(server, "/api/factorize", {"method": "sefa", "layers": [2, 4], "k": 3})
    assert status == 200, reply
    expected = factorize.sefa(ex, (2, 4), k=3, num_samples=5000)  # the request's default
    assert reply["layers"] == [2, 4] and len(reply["directions"]) == 3
    for d, e in zip(reply["directions"], expected.directions):
        assert (d["name"], d["layers"], d["strength"]) == (e.name, [2, 4], 0.0)
        np.testing.assert_allclose(d["vector"], e.vector, rtol=1e-6)
    np.testing.assert_allclose(reply["values"], expected.values, rtol=1e-6)
    # The directions are accepted in a recipe as they are.
    recipe = {"format": "stylegan_jax.recipe", "version": 1, "directions": reply["directions"]}
    assert post(server, "/api/recipe", {"recipe": recipe})[0] == 200
    status, reply = post(server, "/api/factorize", {"method": "ganspace", "k": 2, "num_samples": 200,
                                                    "seed": 1})
    assert status == 200, reply
    expected = factorize.ganspace(ex, None, k=2, num_samples=200, seed=1)
    assert reply["layers"] == [0, ex.num_layers]
    np.testing.assert_allclose(reply["directions"][0]["vector"], expected.directions[0].vector,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("body, status, words", [
    ({"method": "sefa", "layers": [4, 2]}, 400, "0 <= start < stop"),
    ({"method": "sefa", "layers": [0, 7]}, 400, "stop <= 6"),
    ({"method": "sefa", "k": 17}, 400, "k must be in [1, 16]"),
    ({"method": "sefa", "k": 33}, 422, "k"),
    ({"method": "ganspace", "num_samples": 10 ** 6}, 422, "num_samples"),
    ({"method": "pca"}, 422, "method"),
])
def test_bad_factorize_requests_answer_one_line(served, body, status, words):
    got, reply = post(served[0], "/api/factorize", body)
    assert got == status and words in reply["error"] and "\n" not in reply["error"], reply


def test_render_maps_have_layer_statistics_unedited_and_edited(served):
    server, ex = served
    recipe = {"format": "stylegan_jax.recipe", "version": 1,
              "edits": [{"layer": "16x8_conv0_up", "channels": "0-5", "amount": 3.0}]}
    for channels in [None, "1,4-6*0.5"]:
        body = {"seed": 5, "psi": 0.7, "layer": LAYER, "recipe": recipe}
        if channels is not None:
            body["stats_channels"] = channels
        status, reply = post(server, "/api/render", body)
        assert status == 200, reply
        stats = reply["maps"]["stats"]
        w = ex.w_from_seeds([5], psi=0.7)
        unedited = ex.features(w, LAYER)[0]
        edited = ex.synthesize(w, {"16x8_conv0_up": np.pad(
            np.full((16, 8, 6), 3.0, np.float32), ((0, 0), (0, 0), (0, 10)))},
            return_features=True).features[LAYER][0]
        chosen = slice(None) if channels is None else sorted(parse_channels(channels, 16))
        assert stats["channels"] == (None if channels is None else [1, 4, 5, 6])
        for name, maps in (("unedited", unedited), ("edited", edited)):
            values = maps[..., chosen].astype(np.float64)
            got = stats[name]
            np.testing.assert_allclose([got["mean"], got["std"], got["min"], got["max"]],
                                       [values.mean(), values.std(), values.min(), values.max()],
                                       rtol=1e-4, atol=1e-5)
        assert stats["edited"]["mean"] != stats["unedited"]["mean"]
