"""The repository cites public sources only: no text names research notes kept outside it.

Code comments, docstrings, docs, tests, vectors and benches cite the public file, RFC or
documentation page a fact comes from, or a section of ``docs/`` (issue 9). The needles are
assembled here so that this file does not match itself.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ("src", "tests", "docs", "bench")
FILES = ("README.md",)
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}

_MD = ".md"
_SHARED = "shared" + "/"
NEEDLES = (
    "pelion-fcc" + _MD,
    "anjay-lwm2m" + _MD,
    "mbl-manifest-peers" + _MD,
    "wave2-facts" + _MD,
    "aesthetics-anchors" + _MD,
    _SHARED + "research",
    _SHARED + "seeds",
)


def _text_files() -> list[Path]:
    paths = [ROOT / name for name in FILES]
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            relative = path.relative_to(ROOT).parts
            if path.is_file() and not SKIPPED_DIRS.intersection(relative) and path.suffix != ".pyc":
                paths.append(path)
    return paths


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # a binary vector (DER, SQLite …), not text


def test_trees_exist() -> None:
    """The walk covers real directories, so an empty result cannot pass by accident."""
    for name in (*TREES, *FILES):
        assert (ROOT / name).exists(), name
    assert len(_text_files()) > 100


def test_no_text_cites_private_notes() -> None:
    """No text file under src/, tests/, docs/, bench/ or README.md names a private note."""
    found = []
    for path in _text_files():
        text = _read_text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            found += [f"{path.relative_to(ROOT)}:{number}: {needle}" for needle in NEEDLES if needle in line]
    assert not found, "cite a public source or docs/*.md instead:\n" + "\n".join(found)
