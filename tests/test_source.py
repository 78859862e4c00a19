"""Source-level rules that review alone would not keep (STYLE.md §2, §5, §8).

After uvloop's ``tests/test_sourcecode.py`` (which checks the source tree, not
behaviour) and msgspec's ``tests/test_cpylint.py`` (a lint of the C code run
as a test). Each check reads files only; none builds or runs the engine.

Rules checked:

* sans-I/O: nothing under ``src/quicfast/proto/`` (``.py``, ``.pyx``,
  ``.pxd``) imports or cimports ``socket``, ``asyncio``, ``time``, ``select``
  or ``threading`` (nor ``selectors``/``_thread``, nor the C clock through
  ``libc.time``/``posix.time``). Time enters the engine as an argument.
  Only direct imports are checked: ``quicfast.tls``, which the engine uses,
  may read the wall clock through ``TLSConfig.clock`` (ticket ages).
* ``csrc/`` is plain C: no ``Python.h`` (or any CPython header or ``Py*``
  identifier), it compiles without Python's include path, and it stays under
  2,000 lines in total.
* Every module under ``src/quicfast`` starts with a header saying what it is
  for, and no module grows past the ~1,500-line budget.
* Every public name in ``quicfast.__all__`` has a docstring.
* Every compiled (``.pyx``) module has a ``.pyi`` stub next to it, and the
  package data ships ``py.typed`` and the stubs.

A check that fails because of code as it is today is marked
``xfail(strict=True)`` for exactly the offending file or name, so that fixing
the code turns the xfail into a failure that asks for the mark to go.
"""

from __future__ import annotations

import ast
import glob
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = SRC / "quicfast"
PROTO = PACKAGE / "proto"
CSRC = ROOT / "csrc"

#: Python modules whose import means I/O, threads or a clock (STYLE.md §2).
BANNED_MODULES = frozenset({"socket", "asyncio", "time", "select", "threading", "selectors", "_thread"})
#: Cython's declarations of the C clock (clock_gettime, time()).
BANNED_CIMPORTS = frozenset({"libc.time", "posix.time"})

#: STYLE.md §2: "Budget: under 2k lines" for all of csrc/.
C_LINE_BUDGET = 2000
#: STYLE.md §9: "our ~1,500-line budget per module".
MODULE_LINE_BUDGET = 1500

SOURCE_SUFFIXES = (".py", ".pyi", ".pyx", ".pxd")


def _relative(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _sources(directory: pathlib.Path, suffixes: tuple[str, ...]) -> list[pathlib.Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in suffixes and p.is_file())


# -- import scanning -----------------------------------------------------------

_TRIPLE_QUOTED = re.compile(r'(?s)[rRbBuU]?("""|\'\'\').*?\1')
_SINGLE_QUOTED = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_COMMENT = re.compile(r"#[^\n]*")
_IMPORT = re.compile(r"^\s*(?:c?import)\s+(.+)$", re.M)
_FROM = re.compile(r"^\s*from\s+(\.*[\w.]*)\s+c?import\b", re.M)


def cython_imports(text: str) -> set[str]:
    """Modules named by ``import``/``cimport``/``from ... (c)import`` lines of
    Cython (or Python) source, after removing strings and comments, so prose
    in docstrings does not count. Relative names keep their leading dots."""
    text = _TRIPLE_QUOTED.sub('""', text)
    text = _SINGLE_QUOTED.sub('""', text)
    text = _COMMENT.sub("", text)
    # Join parenthesised continuation lines of "from x import (a,\n b)" and
    # backslash continuations, so each statement is on one line.
    text = text.replace("\\\n", " ")
    found: set[str] = set()
    for match in _FROM.finditer(text):
        found.add(match.group(1))
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            name = part.strip().split(" as ")[0].strip().strip("()")
            if name:
                found.add(name)
    return found


def python_imports(text: str) -> set[str]:
    """Modules imported anywhere in Python source (including inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def banned(modules: set[str]) -> list[str]:
    """The names in `modules` that break the sans-I/O rule."""
    bad = []
    for name in modules:
        if name.startswith("."):
            continue  # relative: inside quicfast.proto itself
        top = name.split(".")[0]
        if top in BANNED_MODULES or any(name == c or name.startswith(c + ".") for c in BANNED_CIMPORTS):
            bad.append(name)
    return sorted(bad)


def test_import_scanner_sees_every_form():
    """The scanner itself: every form of import is found, prose is not."""
    sample = '''
"""Docstring mentioning import socket and from time import monotonic."""
import os, socket as s
import asyncio.events
cimport cython
from time import monotonic
from select cimport something
from libc.time cimport clock_gettime
from threading import (
    Lock,
)
from . import sibling
x = "import selectors"  # import _thread
'''
    found = cython_imports(sample)
    assert {"os", "socket", "asyncio.events", "cython", "time", "select", "libc.time", "threading", "."} <= found
    assert "selectors" not in found and "_thread" not in found
    assert banned(found) == ["asyncio.events", "libc.time", "select", "socket", "threading", "time"]
    python_sample = "import os\ndef f():\n    import socket\nfrom time import sleep\nfrom . import x\n"
    assert banned(python_imports(python_sample)) == ["socket", "time"]


PROTO_FILES = _sources(PROTO, (".py", ".pyx", ".pxd"))


def test_proto_sources_are_found():
    suffixes = {p.suffix for p in PROTO_FILES}
    assert {".py", ".pyx", ".pxd"} <= suffixes, PROTO_FILES
    assert PROTO / "connection.pyx" in PROTO_FILES


@pytest.mark.parametrize("path", PROTO_FILES, ids=_relative)
def test_proto_is_sans_io(path: pathlib.Path):
    """STYLE.md §2: the engine never touches sockets, the event loop, threads or the clock."""
    text = path.read_text(encoding="utf-8")
    modules = python_imports(text) if path.suffix == ".py" else cython_imports(text)
    assert banned(modules) == [], f"{_relative(path)} imports {banned(modules)}: pass time in as `now` instead"


# -- C --------------------------------------------------------------------------

C_FILES = sorted(CSRC.glob("*.[ch]"))


def _without_comments(text: str) -> str:
    text = re.sub(r"(?s)/\*.*?\*/", " ", text)
    return re.sub(r"//[^\n]*", " ", text)


def _c_code(text: str) -> str:
    """C source without comments and string literals."""
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', _without_comments(text))


def test_csrc_exists():
    assert {p.name for p in C_FILES} >= {"aead.c", "aead.h", "udp.c", "udp.h"}


@pytest.mark.parametrize("path", C_FILES, ids=_relative)
def test_c_has_no_python_api(path: pathlib.Path):
    """STYLE.md §2: csrc/ includes no Python.h, so it builds into standalone C tests and fuzzers."""
    raw = path.read_text(encoding="utf-8")
    includes = re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', _without_comments(raw), re.M)
    assert includes, f"{_relative(path)}: no #include found (scanner broken?)"
    python_headers = [h for h in includes if os.path.basename(h) in ("Python.h", "structmember.h")
                      or h.startswith(("cpython/", "internal/pycore"))]
    assert python_headers == [], f"{_relative(path)} includes {python_headers}"
    identifiers = sorted(set(re.findall(r"\b_?Py[A-Z_]\w*", _c_code(raw))))
    assert identifiers == [], f"{_relative(path)} uses CPython API {identifiers}"


def test_c_line_budget():
    """STYLE.md §2: all of csrc/ stays under 2,000 lines (aioquic's whole C is 841)."""
    counts = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in C_FILES}
    assert sum(counts.values()) < C_LINE_BUDGET, counts


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
@pytest.mark.parametrize("path", sorted(CSRC.glob("*.c")), ids=_relative)
def test_c_compiles_without_python_headers(path: pathlib.Path):
    """The proof of "no Python.h": each .c compiles with only csrc/ and the system headers."""
    if path.name == "aead.c" and not any(
        os.path.exists(os.path.join(d, "openssl", "evp.h")) for d in ("/usr/include", "/usr/local/include")
    ):
        pytest.skip("OpenSSL headers (openssl/evp.h) not installed")
    result = subprocess.run(["cc", "-fsyntax-only", "-I", str(CSRC), str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


# -- module headers and line budgets ---------------------------------------------

MODULES = _sources(PACKAGE, SOURCE_SUFFIXES)


def _has_header(path: pathlib.Path, text: str) -> bool:
    if path.suffix in (".py", ".pyi"):
        doc = ast.get_docstring(ast.parse(text))
        return bool(doc and doc.strip())
    # Cython: a module docstring or a leading comment block (extern-only .pxd files).
    stripped = text.lstrip()
    match = re.match(r'(?s)[rRuU]?("""|\'\'\')(.*?)\1', stripped)
    if match:
        return bool(match.group(2).strip())
    return bool(re.match(r"#\s*\S", stripped))


def test_modules_are_found():
    suffixes = {p.suffix for p in MODULES}
    assert set(SOURCE_SUFFIXES) <= suffixes
    assert PACKAGE / "__init__.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_module_has_header(path: pathlib.Path):
    """STYLE.md §5: a module's first lines say what it is for (and which RFC sections)."""
    assert _has_header(path, path.read_text(encoding="utf-8")), f"{_relative(path)} has no module docstring or header comment"


#: Modules over budget today, with the reason (strict: splitting them must remove the mark).
OVER_BUDGET: dict = {}


def _budget_param(path: pathlib.Path):
    reason = OVER_BUDGET.get(_relative(path))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=_relative(path), marks=marks)


@pytest.mark.parametrize("path", [_budget_param(p) for p in MODULES if p.suffix != ".pyi"])
def test_module_line_budget(path: pathlib.Path):
    """STYLE.md §9: no module grows past ~1,500 lines."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MODULE_LINE_BUDGET, f"{_relative(path)} has {lines} lines (budget {MODULE_LINE_BUDGET})"


def test_over_budget_list_names_real_files():
    for name in OVER_BUDGET:
        assert (ROOT / name).is_file(), f"stale OVER_BUDGET entry {name}"


# -- public API docstrings ---------------------------------------------------------

#: Public names without a docstring today (strict: documenting them must remove the entry).
#: Public names known to lack a docstring (none today).
UNDOCUMENTED: dict = {}


def _public_names() -> list:
    import quicfast  # pytest's pythonpath puts src/ first

    params = []
    for name in sorted(quicfast.__all__):
        marks = [pytest.mark.xfail(strict=True, reason=UNDOCUMENTED[name])] if name in UNDOCUMENTED else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", _public_names())
def test_public_name_has_docstring(name: str):
    """Every name a user can import from `quicfast` explains itself (h11's __init__ re-exports)."""
    import quicfast

    obj = getattr(quicfast, name)
    # A class's own __doc__ (not inherited: inspect.getdoc would borrow the base's).
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    assert doc and doc.strip(), f"quicfast.{name} has no docstring"


def test_undocumented_list_names_real_exports():
    import quicfast

    assert set(UNDOCUMENTED) <= set(quicfast.__all__)


# -- typing: stubs and py.typed ------------------------------------------------------

COMPILED = sorted(PACKAGE.rglob("*.pyx"))


def test_compiled_modules_are_found():
    assert PROTO / "connection.pyx" in COMPILED and PACKAGE / "_udp.pyx" in COMPILED


@pytest.mark.parametrize("path", COMPILED, ids=_relative)
def test_compiled_module_has_stub(path: pathlib.Path):
    """STYLE.md §8: every compiled module gets a .pyi (aioquic _buffer.pyi, uvloop loop.pyi)."""
    stub = path.with_suffix(".pyi")
    assert stub.is_file(), f"{_relative(path)} has no {stub.name}"
    ast.parse(stub.read_text(encoding="utf-8"), filename=str(stub))


def _package_data() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    return pyproject["tool"]["setuptools"]["package-data"]["quicfast"]


def test_package_ships_py_typed():
    """PEP 561: the package says it is typed, and the marker is in the package data."""
    assert (PACKAGE / "py.typed").is_file()
    assert "py.typed" in _package_data()


def test_package_data_ships_every_stub():
    """Each .pyi under src/quicfast matches a package-data glob (setuptools globs
    relative to the package directory, recursively)."""
    shipped = set()
    for pattern in _package_data():
        shipped.update(os.path.normpath(p) for p in glob.glob(str(PACKAGE / pattern), recursive=True))
    stubs = [os.path.normpath(p) for p in PACKAGE.rglob("*.pyi")]
    missing = [os.path.relpath(p, ROOT) for p in stubs if p not in shipped]
    assert stubs and missing == []
