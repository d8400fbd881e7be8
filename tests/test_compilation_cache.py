"""The persistent compilation cache the commands turn on (utils.enable_compilation_cache): a second
process loads what the first compiled instead of compiling it again."""
import os
import subprocess
import sys

from stylegan_jax import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Compiles one program and prints the cache directory in use and the cache hits JAX recorded.
CHILD = """
import sys
import jax, jax.numpy as jnp
from stylegan_jax.utils import enable_compilation_cache
hits = []
jax.monitoring.register_event_listener(
    lambda event, **_: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None)
print(enable_compilation_cache(sys.argv[1] if len(sys.argv) > 1 else None, min_compile_seconds=0))
jax.jit(lambda x: jnp.tanh(x @ x.T) + 1.0)(jnp.ones((32, 32))).block_until_ready()
print(len(hits))
"""


def _run(*args, env=None):
    result = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                            check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO, **(env or {})))
    directory, hits = result.stdout.split()
    return directory, int(hits)


def test_a_second_process_loads_the_program_the_first_compiled(tmp_path):
    cache = str(tmp_path / "cache")
    assert _run(cache) == (cache, 0)
    entries = sorted(os.listdir(cache))
    programs = [e for e in entries if e.endswith("-cache")]
    assert any(e.startswith("jit__lambda") for e in programs)  # the first process wrote them
    # The second loads every one (the lambda and jnp.ones' own small programs) and adds nothing.
    assert _run(cache) == (cache, len(programs))
    assert sorted(os.listdir(cache)) == entries


def test_the_environment_names_the_directory_or_turns_the_cache_off(tmp_path):
    cache = str(tmp_path / "from_env")
    assert _run(env={utils.COMPILATION_CACHE_ENV: cache}) == (cache, 0) and os.listdir(cache)
    assert _run(env={utils.COMPILATION_CACHE_ENV: "off"}) == ("None", 0)
    home = str(tmp_path / "xdg")
    env = {utils.COMPILATION_CACHE_ENV: "", "XDG_CACHE_HOME": home}
    assert _run(env=env)[0] == os.path.join(home, "stylegan_jax", "jax_cache")
