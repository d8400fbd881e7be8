"""The package's import layering: every import between units of stylegan_jax points down.

A unit is a top-level module or sub-package of stylegan_jax. TIERS orders them from the bottom up;
a module may import only units of a lower tier (never its own tier's other units, so there can be
no cycle), and nothing in stylegan_jax imports experiments/ or benchmarks/ (the command-line and
benchmark layers sit on top of the package). Every import statement counts, including those
inside functions (the lazy imports that keep TensorFlow or orbax off a code path).
"""
import ast
import os

import pytest

PACKAGE = "stylegan_jax"
PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)
OUTSIDE = ("experiments", "benchmarks")  # top-level packages stylegan_jax must never import

TIERS = (
    ("utils", "atomic", "serving"),  # generic helpers, atomic file writes, running an HTTP server
    ("layers",),                     # equalized-LR layers, blur, AdaIN
    ("losses", "networks", "augment"),  # GAN losses; the generator and discriminator; D's
                                     # input augmentations (ADA, DiffAugment)
    ("pretrained",),                 # networks trained elsewhere (NVIDIA's StyleGAN v1 pickles)
    ("data",),                       # datasets, the input pipeline, LabelSpec
    ("conditional",),                # labels in the networks and losses
    ("prep",),                       # dataset preparation, writing data's prepared format
    ("metrics",),                    # SWD, FID/KID, PPL
    ("classifier",),                 # the attribute classifier (a judge of conditional samples)
    ("training",),                   # the train step, checkpoints, the loop
    ("explore",),                    # the explorer (loads training checkpoints)
    ("export",),                     # ONNX / SavedModel export (uses the explorer's edit hooks)
)
RANK = {unit: tier for tier, units in enumerate(TIERS) for unit in units}


def unit_of(path: str) -> str:
    """The unit of a module, from its path relative to the package directory."""
    first = path.split("/")[0]
    return first[:-len(".py")] if first.endswith(".py") else first


def imported_modules(path: str, source: str):
    """(line, absolute dotted name) of every import in a module's source, at any depth.

    `from X import a, b` gives X.a and X.b, so `from stylegan_jax import layers` names the unit it
    imports; relative imports are resolved against the module's package.
    """
    package = [PACKAGE] + path.split("/")[:-1]
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def layering_violations(modules):
    """The imports of `modules` ({path relative to the package directory: source}) that break the
    layering, one line each: "path:line: unit imports name"."""
    problems = []
    for path, source in sorted(modules.items()):
        unit = unit_of(path)
        for line, name in imported_modules(path, source):
            parts = name.split(".")
            if parts[0] in OUTSIDE:
                problems.append(f"{path}:{line}: {unit} imports {name} (stylegan_jax must not import {parts[0]}/)")
            elif parts[0] == PACKAGE and len(parts) > 1 and parts[1] != unit:
                target = parts[1]
                if target not in RANK:
                    problems.append(f"{path}:{line}: {unit} imports {name}, of no unit in TIERS")
                elif unit in RANK and RANK[target] >= RANK[unit]:
                    problems.append(f"{path}:{line}: {unit} imports {name}: {target} is not below {unit} in TIERS")
    return problems


def package_modules():
    """{path relative to the package directory ('/'-separated): source} of every module."""
    modules = {}
    for directory, subdirectories, names in os.walk(PACKAGE_DIR):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as file:
                    modules[os.path.relpath(path, PACKAGE_DIR).replace(os.sep, "/")] = file.read()
    return modules


def test_every_unit_has_a_tier():
    units = {unit_of(path) for path in package_modules()} - {"__init__"}
    assert units == set(RANK), (f"units without a tier: {sorted(units - set(RANK))}; "
                                f"tiers without a unit: {sorted(set(RANK) - units)}")


def test_imports_point_down_and_never_outside_the_package():
    problems = layering_violations(package_modules())
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


@pytest.mark.parametrize("path, source", [
    ("layers.py", "def f():\n    from stylegan_jax.training import loop\n"),  # up, inside a function
    ("data/sources.py", "from stylegan_jax.prep.images import load_rgb\n"),    # up, from a sub-package
    ("losses.py", "import stylegan_jax.networks\n"),                             # sideways (same tier)
    ("prep/tags.py", "from .. import classifier\n"),                             # a relative import, up
    ("training/loop.py", "from stylegan_jax import explore\n"),                  # `from package import unit`
    ("explore/model.py", "from experiments.configs import smoke\n"),
    ("metrics/fid.py", "import benchmarks.timing\n"),
    ("networks.py", "from stylegan_jax.newunit import x\n"),                     # a unit without a tier
])
def test_the_check_catches_each_kind_of_bad_import(path, source):
    assert len(layering_violations({path: source})) == 1


def test_the_check_accepts_downward_and_internal_imports():
    modules = {"training/loop.py": "from stylegan_jax import conditional\nfrom stylegan_jax.training import steps\n"
                                   "def f():\n    from stylegan_jax.data.pipeline import make_pipeline\n",
               "export/exporters.py": "from stylegan_jax.explore.model import load_generator\nimport numpy\n",
               "prep/crops.py": "from .images import crop_resize\nfrom stylegan_jax.utils import read_json\n"}
    assert layering_violations(modules) == []
