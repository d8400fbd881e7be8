"""Shared test setup: JAX on the CPU (where float32 matmuls run at full precision), no GPU visible
to TensorFlow either, TensorFlow's C++ logging silenced, and no persistent compilation cache for
the commands tests start (each test compiles what it runs; test_compilation_cache.py tests the
cache).

Fixtures shared by several test modules go here; plain helper functions they share are in
helpers.py.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("STYLEGAN_JAX_COMPILATION_CACHE", "off")
