"""Helper functions and constants shared by several test modules (fixtures live in conftest.py).

Tests import these directly (`from helpers import ...`; pytest puts tests/ on sys.path), so no
test module imports another.
"""
import datetime as dt
import glob
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from stylegan_jax.data.pipeline import make_pipeline
from stylegan_jax.data.prepared import read_prepared_info
from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.export import ExportOptions
from stylegan_jax.networks import Generator, truncate
from stylegan_jax.utils import cpu_compiler_options


# Gradients: checked against central finite differences.

def assert_matches_finite_differences(fn, params, grads, num_directions, h=1e-5, rel=1e-6):
    """<grads, d> equals (fn(p + h d) - fn(p - h d)) / 2h along random directions d."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(0)
    for _ in range(num_directions):
        direction = treedef.unflatten([rng.standard_normal(l.shape) for l in leaves])
        step = lambda s: jax.tree_util.tree_map(lambda p, d: p + s * d, params, direction)
        numeric = (fn(step(h)) - fn(step(-h))) / (2 * h)
        analytic = sum(float(jnp.sum(g * d)) for g, d in zip(jax.tree_util.tree_leaves(grads),
                                                              jax.tree_util.tree_leaves(direction)))
        assert analytic == pytest.approx(float(numeric), rel=rel)


# Training states: leaves by name, to compare runs leaf by leaf.

def leaves_by_path(tree) -> dict:
    """{'g_params/.../weight': numpy array} of every leaf of a pytree (e.g. a TrainState)."""
    from stylegan_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
    return {checkpoint._path_str(p): np.asarray(x)  # pylint: disable=protected-access
            for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


# Files: a digest that shows a directory was left untouched.

def tree_digest(directory) -> dict:
    """{relative path: sha256} of every file below `directory`."""
    out = {}
    for path in sorted(glob.glob(os.path.join(directory, "**"), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


# Export: a tiny generator and the JAX reference an exported model must compute.

TOLERANCE = 1e-3
EDITS = ("16x8_conv1", "32x16_conv0_up")
_TINY_GENERATOR = dict(base_shape=(8, 4), num_stages=3, latent_size=16, dlatent_size=16, mapping_layers=2,
                       mapping_fmaps=16, fmap_base=64, fmap_max=32)  # 8x4 -> 32x16, 16-32 channels
_CACHE = {}


def tiny_generator(label_size=0, fused=False, seed=0):
    """(G, params, w_avg): random parameters of the right shapes (shape-only init, no compile).

    Stored weights are N(0, 1), as equalized LR keeps them (the mapping's N(0, 1/lr_mul)); noise
    weights are non-zero so that the fixed noise shows in the images.
    """
    key = ("G", label_size, fused, seed)
    if key not in _CACHE:
        G = Generator.create(**_TINY_GENERATOR, label_size=label_size, fused_scale=fused)
        labels = jnp.zeros((1, label_size)) if label_size else None
        shapes = jax.eval_shape(lambda: G.init({"params": jax.random.key(0), "noise": jax.random.key(1)},
                                               jnp.zeros((1, 16)), labels, stage=2)["params"])
        leaves, tree = jax.tree.flatten_with_path(shapes)
        rng = np.random.default_rng(seed)
        params = []
        for path, leaf in leaves:
            scale = 1.0 / G.mapping_network.mapping_lr_mul if "mapping_network" in str(path) else 1.0
            if "bias" in str(path) or "weight" in str(path):  # biases, noise strengths
                scale = 0.2
            params.append(jnp.asarray(rng.standard_normal(leaf.shape) * scale, jnp.float32))
        w_avg = rng.standard_normal(G.dlatent_size).astype(np.float32) * 0.5
        _CACHE[key] = (G, jax.tree.unflatten(tree, params), w_avg)
    return _CACHE[key]


def reference_fn(G, params, w_avg, options: ExportOptions):
    """The JAX generator, vmapped over examples so each example gets a scalar psi (as
    networks.truncate takes it); jitted once per model and options."""
    key = ("ref", id(params), G, options)
    if key in _CACHE:
        return _CACHE[key]

    def one(latent, psi, labels, edits):  # one example, with a batch axis of 1
        v = {"params": params}
        w = latent if options.input_kind == "w" else G.apply(v, latent, labels,
                                                             method=Generator.mapping)
        w = truncate(w, jnp.asarray(w_avg), psi, options.truncation_cutoff)
        if options.layout == "nchw":
            edits = {k: jnp.transpose(d, (0, 2, 3, 1)) for k, d in edits.items()}
        stats = None
        if edits and options.local_edits:  # the unedited pass's instance-norm statistics
            stats = synthesize(G, params, w, noise_mode=options.noise).norm_stats
        x = synthesize(G, params, w, noise_mode=options.noise, edits=edits, norm_stats=stats).images
        x = jnp.clip(x, -1.0, 1.0)
        return jnp.transpose(x, (0, 3, 1, 2)) if options.layout == "nchw" else x

    def batch(latent, psi, labels, edits):
        add_axis = lambda a: None if a is None else a[:, None]  # noqa: E731
        out = jax.vmap(one)(add_axis(latent), psi, add_axis(labels),
                            {k: d[:, None] for k, d in edits.items()})
        return out[:, 0]

    _CACHE[key] = jax.jit(batch, compiler_options=cpu_compiler_options(True))
    return _CACHE[key]


def make_inputs(specs, n, seed, edit_scale=0.5):
    """Random inputs for the manifest's input specs; psi spans [0.4, 1]."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = [n if d == "N" else d for d in spec["shape"]]
        if spec["name"] == "psi":
            feeds["psi"] = np.linspace(0.4, 1.0, n).astype(np.float32)
        elif spec["name"] == "labels":
            feeds["labels"] = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], n)]
        else:
            scale = edit_scale if spec["name"].startswith("edit_") else 1.0
            feeds[spec["name"]] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return feeds


def check_against_reference(run, model, options, manifest, feeds):
    """run(feeds) matches the reference; returns the images."""
    G, params, w_avg = model
    edits = {name: feeds[f"edit_{name}"] for name in options.edit_layers}
    expected = np.asarray(reference_fn(G, params, w_avg, options)(
        feeds[options.input_kind], feeds["psi"], feeds.get("labels"), edits))
    got = run(feeds)
    n = len(feeds["psi"])
    assert got.shape == expected.shape == (n, *manifest["outputs"][0]["shape"][1:])
    assert got.min() >= -1.0 and got.max() <= 1.0
    inside = np.mean(np.abs(expected) < 0.99)
    assert inside > 0.2, f"images saturated ({inside:.0%} unclipped): the check would be weak"
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    return got


def onnx_runner(path):
    """run(feeds) -> images of the ONNX model at `path`, on onnxruntime's CPU provider."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(["images"], feeds)[0]


# Danbooru: a generated dump (metadata in both release formats, images) and its ground truth.

UTC = dt.timezone.utc
TAG_POOL = ["1girl", "1boy", "solo", "smile", "lying", "on_side", "blonde_hair", "black_hair", "blue_eyes",
            "red_eyes", "open_mouth", "hairband", "long_hair"]
MALFORMED_LINES = [
    "{not json at all",
    json.dumps(["a", "list"]),
    json.dumps({"id": "12", "created_at": "2015-01-01 00:00:00 UTC"}),  # no sizes, favourites, ext, rating
    json.dumps({"id": "x13", "created_at": "2015-01-01 00:00:00 UTC", "image_width": "10", "image_height": "10",
                "file_ext": "jpg", "rating": "s", "favs": []}),  # id not a number
    json.dumps({"id": 14, "created_at": "yesterday", "image_width": 10, "image_height": 10, "file_ext": "jpg",
                "rating": "s", "fav_count": 1}),  # unparseable date
]


def make_ground_truth(num_posts, seed=0, size_range=(200, 1200)):
    """Random posts as plain dicts: the expectation every test computes from."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 3_000_000), size=num_posts, replace=False)
    start = dt.datetime(2010, 1, 1, tzinfo=UTC).timestamp()
    end = dt.datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    posts = []
    for post_id in ids:
        tags = [t for t in TAG_POOL if rng.random() < 0.25]
        posts.append({
            "id": int(post_id),
            "created": dt.datetime.fromtimestamp(float(rng.uniform(start, end)), UTC).replace(microsecond=0),
            "width": int(rng.integers(*size_range)), "height": int(rng.integers(*size_range)),
            "ext": str(rng.choice(["jpg", "jpg", "png", "png", "mp4", "zip"])),
            "rating": str(rng.choice(["g", "s", "q", "e"])), "favs": int(rng.integers(0, 20)),
            "general": tags, "character": ["some_character"] if rng.random() < 0.5 else [],
        })
    return posts


def old_format(post):
    """Danbooru2017-2020 export: numbers as strings, tag objects, favourites as user ids."""
    tags = [{"id": str(100 + i), "name": name, "category": "0"} for i, name in enumerate(post["general"])]
    tags += [{"id": "9", "name": name, "category": "4"} for name in post["character"]]
    return {"id": str(post["id"]), "created_at": post["created"].strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
            "image_width": str(post["width"]), "image_height": str(post["height"]), "file_ext": post["ext"],
            "rating": post["rating"], "score": "3", "tags": tags, "pools": [],
            "favs": [str(1000 + i) for i in range(post["favs"])]}


def new_format(post):
    """Danbooru2021+ (API fields): integers, fav_count, tag strings, local time with an offset."""
    local = post["created"].astimezone(dt.timezone(dt.timedelta(hours=-4)))
    return {"id": post["id"], "created_at": local.isoformat(timespec="milliseconds"),
            "image_width": post["width"], "image_height": post["height"], "file_ext": post["ext"],
            "rating": post["rating"], "score": 3, "fav_count": post["favs"],
            "tag_string_general": " ".join(post["general"]), "tag_string_character": " ".join(post["character"]),
            "tag_string_copyright": "", "tag_string_artist": "someone", "tag_string_meta": ""}


def write_metadata(directory, posts, malformed=MALFORMED_LINES):
    """Half the posts in the old format, half in the new, each file with malformed lines mixed in."""
    os.makedirs(directory, exist_ok=True)
    half = len(posts) // 2
    for name, part, to_record in (("2018.json", posts[:half], old_format), ("2021.jsonl", posts[half:], new_format)):
        lines = [json.dumps(to_record(post)) for post in part]
        for index, bad in enumerate(malformed):
            lines.insert(min(len(lines), 7 * index + 3), bad)
        with open(os.path.join(directory, name), "w") as file:
            file.write("\n".join(lines) + "\n")
    return 2 * len(malformed)


def write_images(images_dir, posts, corrupt_ids=()):
    """Each post's image, where the releases put it, the post id drawn in its pixel values."""
    for post in posts:
        path = os.path.join(images_dir, f"{post['id'] % 1000:04d}", f"{post['id']}.{post['ext']}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if post["id"] in corrupt_ids:
            with open(path, "wb") as file:
                file.write(b"\x89PNG\r\n\x1a\n this is not an image")
            continue
        Image.fromarray(post_pixels(post)).save(path, format="PNG")


def post_pixels(post):
    """The image write_images() stores for a post: its id drawn in the pixel values."""
    y, x = np.mgrid[0:post["height"], 0:post["width"]]
    return np.stack([(x * 7 + post["id"]) % 256, (y * 5) % 256, np.full_like(x, post["id"] % 251)], -1).astype(np.uint8)


def make_fake_dump(root, num_posts, seed=0, size_range=(200, 1200), images=False, corrupt_ids=()):
    """A dump below `root` (metadata/, and images/ if asked): (ground-truth posts, malformed lines)."""
    posts = make_ground_truth(num_posts, seed, size_range)
    num_malformed = write_metadata(os.path.join(root, "metadata"), posts)
    if images:
        write_images(os.path.join(root, "images"), posts, corrupt_ids)
    return posts, num_malformed


# Prepared datasets: read back as training reads them.

def read_examples(out_dir):
    """{key: (uint8 image, label)} as the training input pipeline reads the prepared dataset."""
    info = read_prepared_info(out_dir)
    batches = make_pipeline(str(out_dir), resolution=info["image_shape"], batch_size=1, shuffle=False,
                            repeat=False, process_index=0, process_count=1)
    return {batch["key"][0].decode(): (np.rint((batch["image"][0] + 1) * 127.5).astype(np.uint8), batch["label"][0])
            for batch in batches}


# Real anime illustrations: the character art of Ren'Py's example games (Expat license), from
# Debian's renpy-thequestion and renpy-demo packages. .ci/run unpacks them and sets
# STYLEGAN_JAX_REQUIRE_ART=1, so there a missing file fails instead of skipping.
ART_ROOT = os.environ.get("STYLEGAN_JAX_ART_ROOT", "/usr/share/games/renpy")


def real_art(relative_path: str) -> str:
    """The path of one illustration under ART_ROOT; skips the test (fails in CI) when it is absent."""
    path = os.path.join(ART_ROOT, relative_path)
    if not os.path.isfile(path):
        message = (f"{path} is missing: apt-get install renpy-thequestion renpy-demo, or set "
                   "STYLEGAN_JAX_ART_ROOT to where their /usr/share/games/renpy lies")
        if os.environ.get("STYLEGAN_JAX_REQUIRE_ART") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


# Training workdirs: a smoke-config run with one checkpoint, as the command-line tools open it.

def write_smoke_workdir(path, adjust_state=None):
    """Writes a training workdir (smoke config, config.json, one checkpoint of a freshly
    initialised state, changed by `adjust_state(state)` if given) at `path`.
    Returns (config, G, state)."""
    from experiments.config_flags import load_config
    from stylegan_jax.training import checkpoint, state as state_lib
    config = load_config("smoke")
    G, D = state_lib.build_networks(config)
    state = jax.jit(lambda: state_lib.init_train_state(G, D, config),
                    compiler_options=cpu_compiler_options(True))()
    if adjust_state is not None:
        state = adjust_state(state)
    ckpt = checkpoint.Checkpointer(os.path.join(path, "checkpoints"), keep=2)
    ckpt.save(state, {"nimg": 0, "config": config.to_dict()})
    ckpt.close()
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config.to_dict(), f)
    return config, G, state
