"""Explorer latency: full synthesis vs cached re-synthesis after a feature-map edit, and the
start-up: how long each first action of a session waits (on XLA compiles).

    python -m benchmarks.bench_explorer                       # demo architecture, random weights
    python -m benchmarks.bench_explorer --model=workdirs/demo # a trained workdir or exported .npz
    python -m benchmarks.bench_explorer --startup             # cold and warm start of the server

--startup runs `python -m experiments.explore` (the bundled demo model) in a fresh process with an
empty compilation cache (cold), then again on the cache that run filled (warm), and sends what a
person's first minute sends over HTTP: the first page's gallery (timed from the server's first
request, i.e. from when the page can be opened, and from process start), then
each action once, in order (each a first: a click's render with feature maps, a gallery of a new
seed count, the first edit on every layer, another layer's maps, noise "random", interpolate,
mix, a recipe on seeds, a small GIF export), then --repeats live edits (an amount moving on one
layer, rendered with its maps, as the page does while a slider moves); --think_s waits between
actions as a person would. Prints a table (action, cold, warm, goal) and one JSON line. The
first image's goal is judged from the server's listening: the time before it is the process's
imports and the model's loading (1.5-4 s on a 2-core CPU, `import jax` alone 1.3-1.9 s),
shown as its own row.

A "live edit" is what the web UI does while an amount slider moves: a new amount for an edit on
one layer, the image re-rendered, converted to uint8 and encoded as PNG. Timings are the median of
--repeats calls after one warm-up call (compilation excluded), each with a different amount (so
nothing is cached but the activations before the edited layer). Speed does not depend on the
weights, so random weights of the demo architecture measure the bundled demo model's latency.
Prints a table and one JSON line.
"""
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
from absl import app, flags
from PIL import Image

from benchmarks.timing import median_seconds
from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.edits import Edit, box_mask, edit_deltas
from stylegan_jax.utils import exit_with_error

TARGET_MS = 100.0
FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Start-up goals (seconds): the first image, every action after it, a live edit's 90th percentile.
FIRST_IMAGE_GOAL_S = {"cold": 3.0, "warm": 1.0}
ACTION_GOAL_S = 1.0
LIVE_EDIT_P90_GOAL_S = 0.030


def demo_shaped_bundle():
    """Random weights in the architecture of experiments/configs/demo.py (64x32 portraits)."""
    from experiments.configs import demo  # pylint: disable=import-outside-toplevel
    from stylegan_jax.explore.model import generator_config  # pylint: disable=import-outside-toplevel
    from stylegan_jax.training.state import build_networks  # pylint: disable=import-outside-toplevel
    kwargs = generator_config(build_networks(demo.get_config())[0])
    kwargs["base_shape"] = tuple(kwargs["base_shape"])
    return random_bundle(seed=0, **kwargs)


def _png_bytes(image: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return len(buffer.getvalue())


def _median_ms(call, repeats: int) -> float:
    return 1000.0 * median_seconds(call, repeats)


def run(explorer: Explorer, repeats: int, seed: int = 0):
    """{layer: {"full_ms", "cached_ms"}} for an edit of a central box on each layer."""
    w = explorer.w_from_seeds([seed], psi=0.7)
    explorer.synthesize(w)  # the page showed this image first: its activations are cached
    results = {}
    for info in explorer.layers:
        mask = box_mask((info.height, info.width), (0.4, 0.25, 0.6, 0.75))
        edit = Edit(info.name, {c: 1.0 for c in range(min(8, info.channels))}, mask)

        def request(i, use_cache, edit=edit):
            deltas = edit_deltas([edit.with_amount(0.5 + 0.01 * i)], explorer)
            _png_bytes(explorer.synthesize(w, deltas, use_cache=use_cache).uint8[0])
        results[info.name] = {"full_ms": _median_ms(lambda i: request(i, False), repeats),
                              "cached_ms": _median_ms(lambda i: request(i, True), repeats)}
    return results


def benchmark(model: str | None = None, repeats: int = 30) -> None:
    """The command with its flags' values (same names and defaults): times live edits of `model`
    (None: random weights of the demo architecture), prints the table and the JSON line."""
    explorer = Explorer.open(model) if model else Explorer(demo_shaped_bundle())
    results = run(explorer, repeats)
    print(f"model: {explorer.provenance.get('source')}  image {explorer.image_shape[0]}x"
          f"{explorer.image_shape[1]}  median of {repeats} (ms, incl. uint8 + PNG encode)")
    print(f"{'edited layer':<18}{'full':>10}{'cached':>10}{'speed-up':>10}")
    for name, r in results.items():
        print(f"{name:<18}{r['full_ms']:>10.2f}{r['cached_ms']:>10.2f}{r['full_ms'] / r['cached_ms']:>9.1f}x")
    worst = max(r["cached_ms"] for r in results.values())
    print(f"worst cached live edit: {worst:.2f} ms (target < {TARGET_MS:.0f} ms): "
          f"{'OK' if worst < TARGET_MS else 'TOO SLOW'}")
    print(json.dumps({"benchmark": "explorer_latency", "model": explorer.provenance.get("source"),
                      "image_shape": list(explorer.image_shape), "repeats": repeats,
                      "layers": results, "worst_cached_ms": worst, "target_ms": TARGET_MS}))


# ------------------------------------------------------------------ start-up
def _post(url: str, name: str, body: dict) -> dict:
    request = urllib.request.Request(url + "api/" + name, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as reply:
        return json.load(reply)


def _edit_recipe(layer: dict, amount: float = 1.0) -> dict:
    """A recipe with one edit: channels 0-7 of `layer` (api's LayerJSON) in a central box."""
    mask = box_mask((layer["height"], layer["width"]), (0.4, 0.25, 0.6, 0.75))
    edit = Edit(layer["name"], {c: 1.0 for c in range(min(8, layer["channels"]))}, mask, amount)
    from stylegan_jax.explore.recipe import Recipe  # pylint: disable=import-outside-toplevel
    return Recipe([edit]).to_json()


def _start_server(cache_dir: str):
    """(process, url, its start time, seconds it took to listen) of experiments.explore on
    port 0."""
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu",
               STYLEGAN_JAX_COMPILATION_CACHE=cache_dir)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "experiments.explore", "--port=0"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    while "explorer at" not in line:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise RuntimeError(f"the explorer exited: {process.stderr.read().strip()[-500:]}")
    return process, re.search(r"(http://\S+)", line).group(1), start, time.perf_counter() - start


def startup_session(cache_dir: str, live_edits: int = 30, think_s: float = 0.0) -> dict:
    """One fresh explorer process on cache_dir: {"first_image": s, "server_up": s, "actions":
    {name: s}, "live_edit_p50"/"_p90": s}; the first image counts from its request (sent once
    the server listens), first_image_from_start and the server's listening from the process's
    start (its imports included); think_s: seconds between actions (a
    person looking at the last result; the warm-up goes on meanwhile), 0 = none."""
    process, url, start, listening = _start_server(cache_dir)
    try:
        page = {"seeds": list(range(8)), "psi": 0.7, "noise_mode": "const"}
        begin = time.perf_counter()
        _post(url, "gallery", page)
        out = {"first_image": time.perf_counter() - begin,
               "first_image_from_start": time.perf_counter() - start, "server_up": listening,
               "actions": {}}
        with urllib.request.urlopen(url + "api/info", timeout=60) as reply:
            layers = json.load(reply)["layers"]
        seed = {"seed": 0, "psi": 0.7}

        def timed(name, endpoint, body):
            time.sleep(think_s)
            begin = time.perf_counter()
            _post(url, endpoint, body)
            out["actions"][name] = time.perf_counter() - begin

        timed("click: render + maps", "render", dict(seed, layer=layers[0]["name"]))
        timed("gallery of 13 seeds", "gallery", dict(page, seeds=list(range(8, 21))))
        edit_times = {}
        for layer in layers:
            time.sleep(think_s)
            begin = time.perf_counter()
            _post(url, "render", dict(seed, layer=layer["name"], recipe=_edit_recipe(layer)))
            edit_times[layer["name"]] = time.perf_counter() - begin
        out["first_edit_per_layer"] = edit_times
        out["actions"]["first edit on a layer (max)"] = max(edit_times.values())
        timed("maps of another layer", "render", dict(seed, layer=layers[-1]["name"]))
        timed("noise random: gallery", "gallery", dict(page, noise_mode="random"))
        timed("noise random: render", "render", dict(seed, layer=layers[0]["name"],
                                                     noise_mode="random"))
        timed("interpolate", "interpolate", {"a": seed, "b": {"seed": 1, "psi": 0.7}, "t": 0.5})
        timed("mix", "mix", {"a": seed, "b": {"seed": 1, "psi": 0.7}, "crossover": 4})
        middle = layers[len(layers) // 2]
        timed("recipe on 8 seeds", "apply_to_seeds", {"seeds": list(range(8)), "psi": 0.7,
                                                      "recipe": _edit_recipe(middle)})
        timed("GIF export (9 frames)", "export", {"kind": "gif", "animation": "interpolation",
                                                  "seeds": [0, 1, 0], "frames": 4, "psi": 0.7})
        times = []
        for i in range(live_edits + 1):
            begin = time.perf_counter()
            _post(url, "render", dict(seed, layer=middle["name"],
                                      recipe=_edit_recipe(middle, 0.5 + 0.01 * i)))
            times.append(time.perf_counter() - begin)
        times = np.asarray(times[1:])  # the first moves the slider away from the recipe above
        out["live_edit_p50"] = float(np.percentile(times, 50))
        out["live_edit_p90"] = float(np.percentile(times, 90))
        return out
    finally:
        process.terminate()
        process.wait(30)


def startup_benchmark(live_edits: int = 30, think_s: float = 0.0) -> dict:
    """Cold then warm start-up sessions (startup_session) on one fresh cache; prints the table
    and the JSON line."""
    with tempfile.TemporaryDirectory(prefix="bench_explorer_cache_") as cache:
        results = {"cold": startup_session(cache, live_edits, think_s),
                   "warm": startup_session(cache, live_edits, think_s)}
    cold, warm = results["cold"], results["warm"]
    rows = [("server listening (from process start)", cold["server_up"], warm["server_up"], ""),
            ("first image (from process start)", cold["first_image_from_start"],
             warm["first_image_from_start"], ""),
            ("first image (from the first request)", cold["first_image"], warm["first_image"],
             f"< {FIRST_IMAGE_GOAL_S['cold']:.0f} / {FIRST_IMAGE_GOAL_S['warm']:.0f} s")]
    rows += [(name, cold["actions"][name], warm["actions"][name], f"< {ACTION_GOAL_S:.0f} s")
             for name in cold["actions"]]
    rows += [("live edit p50", cold["live_edit_p50"], warm["live_edit_p50"], ""),
             ("live edit p90", cold["live_edit_p90"], warm["live_edit_p90"],
              f"< {1000 * LIVE_EDIT_P90_GOAL_S:.0f} ms")]
    print(f"bundled demo model, {live_edits} live edits, {think_s:g} s between actions; seconds "
          f"(cold: empty compilation cache, warm: the cache the cold run filled)")
    print(f"{'action':<40}{'cold s':>9}{'warm s':>9}  goal")
    for name, c, w, goal in rows:
        print(f"{name:<40}{c:>9.3f}{w:>9.3f}  {goal}")
    met = {kind: (r["first_image"] < FIRST_IMAGE_GOAL_S[kind]
                  and max(r["actions"].values()) < ACTION_GOAL_S
                  and r["live_edit_p90"] < LIVE_EDIT_P90_GOAL_S) for kind, r in results.items()}
    print(f"goals met: cold {met['cold']}, warm {met['warm']}")
    print(json.dumps({"benchmark": "explorer_startup", "live_edits": live_edits, "think_s": think_s,
                      "results": results, "goals_met": met,
                      "goals_s": {"first_image": FIRST_IMAGE_GOAL_S, "action": ACTION_GOAL_S,
                                  "live_edit_p90": LIVE_EDIT_P90_GOAL_S}}))
    return results


def define_flags() -> None:
    """Defines the command's flags. Only run as a program: bench_export imports this module, and
    absl refuses a flag name (e.g. --repeats) defined twice in one process."""
    flags.DEFINE_string("model", None, "workdir or exported .npz (default: random weights of the demo architecture)")
    flags.DEFINE_integer("repeats", 30, "timed calls per measurement")
    flags.DEFINE_bool("startup", False, "time a cold and a warm start of the explorer's server "
                      "instead (the bundled demo model; --repeats live edits each)")
    flags.DEFINE_float("think_s", 0.0, "--startup: seconds between a session's actions (a person "
                       "looking at the result; the warm-up goes on meanwhile)", lower_bound=0.0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        if FLAGS.startup:
            startup_benchmark(FLAGS.repeats, FLAGS.think_s)
        else:
            benchmark(FLAGS.model, repeats=FLAGS.repeats)
    except (ValueError, OSError, ImportError, RuntimeError) as e:  # bad input, a missing file or optional package
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
