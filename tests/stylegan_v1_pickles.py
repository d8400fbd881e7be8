"""NVIDIA StyleGAN v1 training snapshots, written the way NVlabs/stylegan writes them, and a NumPy
re-statement of the official forward passes (training/networks_stylegan.py), for the import tests.

A snapshot is pickle.dump((G, D, Gs)) of `dnnlib.tflib.network.Network` objects whose
`__getstate__` is a dict (version, name, static_kwargs, components, build_module_src,
build_func_name, variables = [(local name, array)]). `write_snapshot` pickles a stub class
registered under that module path, so the file's bytes name the real class. Variables have the
official names, shapes and layouts (NCHW activations; conv kernels [kh, kw, in, out]; dense
[in, out]; weights stored unscaled, used as stored * gain / sqrt(fan_in) * lrmul).
"""
import contextlib
import math
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np

MODULE = "dnnlib.tflib.network"


class Network:
    """Stand-in for dnnlib.tflib.network.Network: pickles to its state dict."""

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


@contextlib.contextmanager
def registered_network_class():
    """Network importable as dnnlib.tflib.network.Network while pickling."""
    saved = {k: sys.modules.get(k) for k in ("dnnlib", "dnnlib.tflib", MODULE)}
    names = {"dnnlib": types.ModuleType("dnnlib"), "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
             MODULE: types.ModuleType(MODULE)}
    Network.__module__, Network.__qualname__ = MODULE, "Network"
    names[MODULE].Network = Network
    sys.modules.update(names)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def nf(stage, fmap_base, fmap_max, fmap_decay=1.0):
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


SMALL = dict(resolution=16, fmap_base=64, fmap_max=32, latent_size=16, dlatent_size=16,
             mapping_layers=2, mapping_fmaps=24, label_size=0, num_channels=3)
FFHQ = dict(resolution=1024, fmap_base=8192, fmap_max=512, latent_size=512, dlatent_size=512,
            mapping_layers=8, mapping_fmaps=512, label_size=0, num_channels=3)


def mapping_variables(a):
    v = OrderedDict()
    if a["label_size"]:
        v["LabelConcat/weight"] = (a["label_size"], a["latent_size"])
    fan = a["latent_size"] * (2 if a["label_size"] else 1)
    for i in range(a["mapping_layers"]):
        out = a["dlatent_size"] if i == a["mapping_layers"] - 1 else a["mapping_fmaps"]
        v[f"Dense{i}/weight"], v[f"Dense{i}/bias"] = (fan, out), (out,)
        fan = out
    return v


def synthesis_variables(a, use_noise=True):
    r2 = int(math.log2(a["resolution"]))
    n = lambda s: nf(s, a["fmap_base"], a["fmap_max"])  # noqa: E731
    v = OrderedDict(lod=())
    if use_noise:
        for i in range(r2 * 2 - 2):
            res = i // 2 + 2
            v[f"noise{i}"] = (1, 1, 2**res, 2**res)

    def epilogue(scope, c):
        if use_noise:
            v[f"{scope}/Noise/weight"] = (c,)
        v[f"{scope}/bias"] = (c,)
        v[f"{scope}/StyleMod/weight"], v[f"{scope}/StyleMod/bias"] = (a["dlatent_size"], 2 * c), (2 * c,)

    v["4x4/Const/const"] = (1, n(1), 4, 4)
    epilogue("4x4/Const", n(1))
    v["4x4/Conv/weight"] = (3, 3, n(1), n(1))
    epilogue("4x4/Conv", n(1))
    for res in range(2, r2 + 1):
        if res > 2:
            s = f"{2**res}x{2**res}"
            v[f"{s}/Conv0_up/weight"] = (3, 3, n(res - 2), n(res - 1))
            epilogue(f"{s}/Conv0_up", n(res - 1))
            v[f"{s}/Conv1/weight"] = (3, 3, n(res - 1), n(res - 1))
            epilogue(f"{s}/Conv1", n(res - 1))
        v[f"ToRGB_lod{r2 - res}/weight"] = (1, 1, n(res - 1), a["num_channels"])
        v[f"ToRGB_lod{r2 - res}/bias"] = (a["num_channels"],)
    return v


def discriminator_variables(a, mbstd_num_features=1):
    r2 = int(math.log2(a["resolution"]))
    n = lambda s: nf(s, a["fmap_base"], a["fmap_max"])  # noqa: E731
    v = OrderedDict(lod=())
    for res in range(r2, 1, -1):
        v[f"FromRGB_lod{r2 - res}/weight"] = (1, 1, a["num_channels"], n(res - 1))
        v[f"FromRGB_lod{r2 - res}/bias"] = (n(res - 1),)
        if res > 2:
            s = f"{2**res}x{2**res}"
            v[f"{s}/Conv0/weight"], v[f"{s}/Conv0/bias"] = (3, 3, n(res - 1), n(res - 1)), (n(res - 1),)
            v[f"{s}/Conv1_down/weight"] = (3, 3, n(res - 1), n(res - 2))
            v[f"{s}/Conv1_down/bias"] = (n(res - 2),)
    v["4x4/Conv/weight"] = (3, 3, n(1) + mbstd_num_features, n(1))
    v["4x4/Conv/bias"] = (n(1),)
    v["4x4/Dense0/weight"], v["4x4/Dense0/bias"] = (n(1) * 16, n(0)), (n(0),)
    out = max(a["label_size"], 1)
    v["4x4/Dense1/weight"], v["4x4/Dense1/bias"] = (n(0), out), (out,)
    return v


def random_values(shapes, rng, lod=0.0, noise_scale=1.0):
    """Arrays for variable shapes: weights ~ N(0, 1) (lrmul-scaled below by the caller), biases
    and noise strengths small random, the constant input and noise maps N(0, 1)."""
    out = OrderedDict()
    for name, shape in shapes.items():
        if name == "lod":
            out[name] = np.float32(lod)
        elif name.endswith("bias") or name.endswith("Noise/weight"):
            out[name] = (0.2 * rng.standard_normal(shape) * noise_scale).astype(np.float32)
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


def network(name, func, static_kwargs, variables, components=None):
    return Network({"version": 3, "name": name, "static_kwargs": dict(static_kwargs),
                    "components": dict(components or {}), "build_module_src": "# not run\n",
                    "build_func_name": func, "variables": list(variables.items())})


def snapshot_variables(a, seed=0, lod=0.0, use_noise=True):
    """{'G_mapping', 'G_synthesis', 'G', 'D'} -> OrderedDict of official variables."""
    rng = np.random.default_rng(seed)
    mapping = random_values(mapping_variables(a), rng)
    for k in mapping:  # official init: N(0, 1 / lrmul) for lrmul 0.01
        if k.endswith("/weight") and k.startswith("Dense"):
            mapping[k] = mapping[k] * 100.0
    synthesis = random_values(synthesis_variables(a, use_noise), rng, lod)
    top = OrderedDict(lod=np.float32(lod),
                      dlatent_avg=rng.standard_normal(a["dlatent_size"]).astype(np.float32))
    d = random_values(discriminator_variables(a), rng, lod)
    return {"G_mapping": mapping, "G_synthesis": synthesis, "G": top, "D": d}


def snapshot_networks(a, variables, g_kwargs=None, d_kwargs=None, gs_variables=None):
    """(G, D, Gs) stubs for official variables; Gs gets `gs_variables` (default: G's)."""
    base = dict(num_channels=a["num_channels"], resolution=a["resolution"],
                label_size=a["label_size"])
    g_kwargs = dict(base, **{k: a[k] for k in ("fmap_base", "fmap_max", "latent_size",
                                               "dlatent_size", "mapping_layers", "mapping_fmaps")},
                    **(g_kwargs or {}))
    num_layers = 2 * int(math.log2(a["resolution"])) - 2

    def generator(name, v):
        synthesis = network("G_synthesis", "G_synthesis", g_kwargs, v["G_synthesis"])
        mapping = network("G_mapping", "G_mapping", dict(g_kwargs, dlatent_broadcast=num_layers),
                          v["G_mapping"])
        return network(name, "G_style", g_kwargs, v["G"],
                       {"synthesis": synthesis, "mapping": mapping})

    d = network("D", "D_basic", dict(base, fmap_base=a["fmap_base"], fmap_max=a["fmap_max"],
                                     **(d_kwargs or {})), variables["D"])
    return generator("G", variables), d, generator("Gs", gs_variables or variables)


def write_snapshot(path, nets, protocol=4, old_numpy_names=False):
    """Pickles (G, D, Gs) as NVIDIA's training loop does (misc.save_pkl). old_numpy_names:
    protocol-2 bytes naming numpy.core.multiarray, as pickles written before NumPy 2 do."""
    with registered_network_class():
        data = pickle.dumps(tuple(nets), protocol=protocol)
    if old_numpy_names:
        assert protocol == 2
        data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    with open(path, "wb") as f:
        f.write(data)
    return path


# ----------------------------------------------------------------------------------------------
# The official forward passes in NumPy (NCHW, float64), read off networks_stylegan.py.

def lrelu(x):
    return np.maximum(x, 0.2 * x)


def dense(x, w, b, gain=math.sqrt(2), lrmul=1.0):
    x = x.reshape(x.shape[0], -1)
    return x @ (w * gain / math.sqrt(w.shape[0]) * lrmul) + b * lrmul


def conv2d(x, w, gain=math.sqrt(2)):
    """tf.nn.conv2d NCHW, SAME, stride 1, kernel [kh, kw, in, out] (cross-correlation)."""
    k = w.shape[0]
    w = w * gain / math.sqrt(np.prod(w.shape[:-1]))
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    h, wd = x.shape[2:]
    out = np.zeros((x.shape[0], w.shape[3], h, wd))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("nihw,io->nohw", xp[:, :, dy:dy + h, dx:dx + wd], w[dy, dx])
    return out


def fused_kernel(w):
    w = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def upscale2d_conv2d_fused(x, w, gain=math.sqrt(2)):
    """The official fused path: conv2d_transpose(x, pad-sum(w) as [k, k, out, in], stride 2, SAME)."""
    w4 = fused_kernel(w * gain / math.sqrt(np.prod(w.shape[:-1])))  # [4, 4, in, out]
    n, c, h, wd = x.shape
    out = np.zeros((n, w.shape[3], 2 * h + 4, 2 * wd + 4))  # padded canvas, offset 1 (SAME pad)
    for a in range(4):
        for b in range(4):
            out[:, :, a:a + 2 * h:2, b:b + 2 * wd:2] += np.einsum("nihw,io->nohw", x, w4[a, b])
    return out[:, :, 1:1 + 2 * h, 1:1 + 2 * wd]


def conv2d_downscale2d_fused(x, w, gain=math.sqrt(2)):
    """The official fused path: conv2d(x, pad-sum(w) * 0.25, stride 2, SAME)."""
    w4 = fused_kernel(w * gain / math.sqrt(np.prod(w.shape[:-1]))) * 0.25
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[3], h // 2, wd // 2))
    for a in range(4):
        for b in range(4):
            out += np.einsum("nihw,io->nohw", xp[:, :, a:a + h:2, b:b + wd:2], w4[a, b])
    return out


def upscale2d(x, f=2):
    return x.repeat(f, axis=2).repeat(f, axis=3)


def downscale2d(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def blur2d(x):
    f = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = x.shape[2:]
    return sum(f[i, j] * xp[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3))


def pixel_norm(x):
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)


def instance_norm(x):
    x = x - x.mean(axis=(2, 3), keepdims=True)
    return x / np.sqrt(np.mean(x**2, axis=(2, 3), keepdims=True) + 1e-8)


def reference_mapping(v, z, labels=None, layers=2, lrmul=0.01):
    x = z.astype(np.float64)
    if labels is not None:
        x = np.concatenate([x, labels @ v["LabelConcat/weight"]], axis=1)
    x = pixel_norm(x)
    for i in range(layers):
        x = lrelu(dense(x, v[f"Dense{i}/weight"], v[f"Dense{i}/bias"], lrmul=lrmul))
    return x


def reference_synthesis(v, dlatents, resolution, lod=0.0, fused="auto", use_noise=True):
    """G_synthesis with randomize_noise=False (the noise{i} variables), structure 'linear'."""
    r2 = int(math.log2(resolution))

    def epilogue(x, scope, i):
        if use_noise:
            x = x + v[f"noise{i}"] * v[f"{scope}/Noise/weight"][None, :, None, None]
        x = lrelu(x + v[f"{scope}/bias"][None, :, None, None])
        x = instance_norm(x)
        style = dense(dlatents[:, i], v[f"{scope}/StyleMod/weight"], v[f"{scope}/StyleMod/bias"], gain=1)
        c = x.shape[1]
        return x * (style[:, :c, None, None] + 1) + style[:, c:, None, None]

    def torgb(x, res):
        lod_ = r2 - res
        return conv2d(x, v[f"ToRGB_lod{lod_}/weight"], gain=1) + v[f"ToRGB_lod{lod_}/bias"][None, :, None, None]

    x = np.tile(v["4x4/Const/const"], (dlatents.shape[0], 1, 1, 1)).astype(np.float64)
    x = epilogue(x, "4x4/Const", 0)
    x = epilogue(conv2d(x, v["4x4/Conv/weight"]), "4x4/Conv", 1)
    images = torgb(x, 2)
    for res in range(3, r2 + 1):
        s = f"{2**res}x{2**res}"
        is_fused = (2**res >= 128) if fused == "auto" else fused
        w = v[f"{s}/Conv0_up/weight"]
        y = upscale2d_conv2d_fused(x, w) if is_fused else conv2d(upscale2d(x), w)
        x = epilogue(blur2d(y), f"{s}/Conv0_up", res * 2 - 4)
        x = epilogue(conv2d(x, v[f"{s}/Conv1/weight"]), f"{s}/Conv1", res * 2 - 3)
        img = torgb(x, res)
        t = np.clip(lod - (r2 - res), 0.0, 1.0)  # tflib.lerp_clip(img, upscaled, lod_in - lod)
        images = img + (upscale2d(images) - img) * t
    return images


def minibatch_stddev(x, group_size=4):
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, -1, 1, c, h, w)                     # official: [G, M, n, c, H, W], strided
    y = np.sqrt(np.mean((y - y.mean(axis=0, keepdims=True))**2, axis=0) + 1e-8)
    y = y.mean(axis=(2, 3, 4), keepdims=True).mean(axis=2)  # [M, 1, 1, 1]
    y = np.tile(y, (g, 1, h, w))
    return np.concatenate([x, y], axis=1)


def reference_discriminator(v, images, resolution, fused="auto", labels=None):
    """D_basic at lod 0 (structure 'fixed'), images NCHW."""
    r2 = int(math.log2(resolution))
    x = lrelu(conv2d(images, v["FromRGB_lod0/weight"]) + v["FromRGB_lod0/bias"][None, :, None, None])
    for res in range(r2, 2, -1):
        s = f"{2**res}x{2**res}"
        x = lrelu(conv2d(x, v[f"{s}/Conv0/weight"]) + v[f"{s}/Conv0/bias"][None, :, None, None])
        is_fused = (2**res >= 128) if fused == "auto" else fused
        w = v[f"{s}/Conv1_down/weight"]
        y = conv2d_downscale2d_fused(blur2d(x), w) if is_fused else downscale2d(conv2d(blur2d(x), w))
        x = lrelu(y + v[f"{s}/Conv1_down/bias"][None, :, None, None])
    x = minibatch_stddev(x)
    x = lrelu(conv2d(x, v["4x4/Conv/weight"]) + v["4x4/Conv/bias"][None, :, None, None])
    x = lrelu(dense(x, v["4x4/Dense0/weight"], v["4x4/Dense0/bias"]))
    x = dense(x, v["4x4/Dense1/weight"], v["4x4/Dense1/bias"], gain=1)
    if labels is not None:
        return np.sum(x * labels, axis=1)
    return x[:, 0]
