"""The test suite (see docs/architecture.md, "The test suite")."""

import os
import sys

# Bytecode caches, as Python writes them by default. Where PYTHONDONTWRITEBYTECODE is set (this
# machine and its CI set it), every test process rewrote every test module's asserts, and every
# `python -m nightwheels` the tests start compiled nightwheels, from source each time (5.5 s of
# collection per process instead of 2.8). Set in the package that every test module and
# conftest.py imports first, before xdist starts its workers.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
