"""Build of the tnmtl Python package: the C extension tnmtl._core over the
repository's static library.

    pip install --no-build-isolation ./python       # install (offline)
    python3 setup.py build_ext --inplace            # in place, for the tests
                                                    # (`make python` does this)

It first runs `make` in the repository root for build/libtnmtl.a and the
CLI's run/session objects (cli/run.c, cli/session.c, cli/cli_util.c: the one
implementation of a run's options, checkpoints and evaluation), then links
them with the Debian libraries the library needs (pkg-config).
"""
import os
import subprocess

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.environ.get("TNMTL_BUILD", "build")
OBJECTS = ["libtnmtl.a", "cli/run.o", "cli/session.o", "cli/cli_util.o"]
PKGS = ["openblas", "libzip", "libpng", "libcjson", "zlib"]


def pkg_config(flag):
    try:
        out = subprocess.run(["pkg-config", flag] + PKGS, check=True, capture_output=True, text=True).stdout
        return out.split()
    except (OSError, subprocess.CalledProcessError):
        return [] if flag == "--cflags" else ["-lopenblas", "-lzip", "-lpng16", "-lcjson", "-lz"]


class BuildWithLibrary(build_ext):
    """Builds the library objects with the repository's Makefile first."""

    def run(self):
        targets = [os.path.join(BUILD, o) for o in OBJECTS]
        jobs = [] if "MAKEFLAGS" in os.environ else ["-j2"]  # a parent make shares its jobs
        subprocess.run(["make", "-C", ROOT, "BUILD=" + BUILD] + jobs + targets, check=True)
        super().run()


core = Extension(
    "tnmtl._core",
    sources=["tnmtl/_core.c"],
    include_dirs=[os.path.join(ROOT, d) for d in ("include", "src", "cli")] + [numpy.get_include()],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wno-unused-parameter"] + pkg_config("--cflags"),
    extra_objects=[os.path.join(ROOT, BUILD, o) for o in reversed(OBJECTS)],
    extra_link_args=pkg_config("--libs") + ["-llapacke", "-lm", "-lpthread"],
)

os.chdir(HERE)
setup(
    name="tnmtl",
    version="0.1.0",
    description="Deep multi-task learning with tensor trace-norm regularisation (numpy and PyTorch)",
    packages=["tnmtl"],
    ext_modules=[core],
    cmdclass={"build_ext": BuildWithLibrary},
    python_requires=">=3.9",
    install_requires=["numpy"],
)
