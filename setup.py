"""Build hook: compiles the event loop's modules with Cython when it can (`wrpsim._native`).

Optional: without Cython, with `WRPSIM_PURE` set (not "0"), or when a module fails to compile,
the package installs and runs as pure Python with the same results. Everything else about the
package is in `pyproject.toml`.
"""

import ast
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: no fused multiply-add, no fast math: every float operation rounds as Python's does
CFLAGS = ["-O2", "-ffp-contract=off", "-fno-fast-math"]


def _modules() -> tuple:
    with open(os.path.join("wrpsim", "_native.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MODULES":
            return ast.literal_eval(node.value)
    raise RuntimeError("wrpsim/_native.py defines no MODULES")


def _skip(why: str) -> list:
    print(f"wrpsim: not compiling the event loop ({why}); pure Python is used", file=sys.stderr)
    return []


def extensions() -> list:
    if os.environ.get("WRPSIM_PURE", "0") not in ("", "0"):
        return _skip("WRPSIM_PURE is set")
    if sys.implementation.name != "cpython":
        return _skip(f"{sys.implementation.name} is not CPython")
    try:
        from Cython.Build import cythonize
    except ImportError:
        return _skip("Cython is not installed")
    exts = [Extension(m, [m.replace(".", "/") + ".py"],
                      extra_compile_args=[] if os.name == "nt" else CFLAGS) for m in _modules()]
    try:
        return cythonize(exts, language_level=3, quiet=True, compiler_directives={
            # annotations stay documentation: `x: float` would make a C double of an int
            "annotation_typing": False,
            "binding": False,
        })
    except Exception as exc:  # (any failure: fall back to pure Python)
        return _skip(f"cythonize failed: {exc}")


class OptionalBuildExt(build_ext):
    """`build_ext` whose failure leaves the pure-Python modules in charge; compiles on every
    core unless told otherwise (`-j`)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def run(self):
        try:
            super().run()
        except Exception as exc:
            _skip(f"build failed: {exc}")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # (`wrpsim._native` then uses none of them)
            _skip(f"{ext.name} failed: {exc}")


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
