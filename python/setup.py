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


def make_link_info():
    """The objects to link and the link flags, as the repository's Makefile has them."""
    out = subprocess.run(["make", "-s", "-C", ROOT, "BUILD=" + BUILD, "print-python-link"], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    return out[0].split(), out[1].split()


def version():
    """TNMTL_VERSION from include/tnmtl/version.h (the one place it is set)."""
    parts = {}
    with open(os.path.join(ROOT, "include", "tnmtl", "version.h")) as f:
        for line in f:
            w = line.split()
            if len(w) == 3 and w[0] == "#define" and w[1] in ("TNMTL_VERSION_MAJOR", "TNMTL_VERSION_MINOR",
                                                             "TNMTL_VERSION_PATCH"):
                parts[w[1]] = w[2]
    return "{}.{}.{}".format(parts["TNMTL_VERSION_MAJOR"], parts["TNMTL_VERSION_MINOR"], parts["TNMTL_VERSION_PATCH"])


OBJECTS, LINK = make_link_info()


def pkg_config_cflags():
    try:
        return subprocess.run(["pkg-config", "--cflags", "openblas", "libcjson"], check=True, capture_output=True,
                              text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return []


class BuildWithLibrary(build_ext):
    """Builds the library objects with the repository's Makefile first."""

    def run(self):
        targets = OBJECTS
        jobs = [] if "MAKEFLAGS" in os.environ else ["-j2"]  # a parent make shares its jobs
        subprocess.run(["make", "-C", ROOT, "BUILD=" + BUILD] + jobs + targets, check=True)
        super().run()


core = Extension(
    "tnmtl._core",
    sources=["tnmtl/_core.c"],
    include_dirs=[os.path.join(ROOT, d) for d in ("include", "src", "cli")] + [numpy.get_include()],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wno-unused-parameter"] + pkg_config_cflags(),
    extra_objects=[os.path.join(ROOT, o) for o in reversed(OBJECTS)],  # the CLI objects before the library
    extra_link_args=LINK,
    depends=[os.path.join(ROOT, o) for o in OBJECTS],  # relink when the library or the CLI objects change
)

os.chdir(HERE)
setup(
    name="tnmtl",
    version=version(),
    description="Deep multi-task learning with tensor trace-norm regularisation (numpy and PyTorch)",
    packages=["tnmtl"],
    ext_modules=[core],
    cmdclass={"build_ext": BuildWithLibrary},
    python_requires=">=3.9",
    install_requires=["numpy"],
)
