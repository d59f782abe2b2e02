"""No docstring or Markdown file cites a repository file that does not exist.

Checked: every Markdown file and every module, class and function docstring of the tree (what
.gitignore leaves out is skipped). A citation is a Markdown link `[text](target)` or a
path-like token with a slash and a known file extension (`docs/DESIGN.md`,
`dataset/windows.py`). A token counts as existing when it resolves from the citing file's
folder or the repository root, or when it is the tail of a repository file's path (docstrings
name modules relative to their package). Not checked: placeholders (`OUT/last/...`,
`DIR/report.md`: a first part in capitals), paths into the folders .gitignore names (outputs
of the commands being described, `runs/sweep/summary.md`), and paths that leave the
repository (`../shared/STYLE.md`). Absolute paths into this machine's layout (`/work/...`)
always fail: a reader of the repository has no such file.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = ("py", "md", "yaml", "yml", "msg", "srv", "txt", "json", "xml", "cfg", "ini", "sh",
              "toml", "tsv", "csv", "png", "mp4", "wav", "npz", "safetensors", "pth")
# A token with at least one slash and a known extension, not part of a longer word or URL.
PATH_TOKEN = re.compile(r"(?<![\w./~$-])(/?(?:[\w.-]+/)+[\w-]+\.(?:" + "|".join(EXTENSIONS)
                        + r"))(?![\w/-])")
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MACHINE_PATHS = ("/work/", "/tmp/", "/root/", "/home/")


def _ignored_folders() -> set[str]:
    """Folder names .gitignore lists (`build/`, `/data/`), plus hidden folders' handling below."""
    names = {"__pycache__"}
    for line in (ROOT / ".gitignore").read_text().splitlines():
        line = line.strip()
        if line.endswith("/") and not line.startswith("#") and "*" not in line:
            names.add(line.strip("/"))
    return names


IGNORED = _ignored_folders()


def _tree_files() -> list[Path]:
    """Every file of the working tree outside ignored and hidden folders."""
    return sorted(p for p in ROOT.rglob("*") if p.is_file()
                  and not any(part in IGNORED or part.startswith(".") or part.endswith(".egg-info")
                              for part in p.relative_to(ROOT).parts[:-1]))


FILES = _tree_files()
RELATIVE = {p.relative_to(ROOT).as_posix() for p in FILES}


def _docstrings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = [n for n in ast.walk(tree)
             if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return [doc for n in nodes if (doc := ast.get_docstring(n))]


def _texts(path: Path) -> list[str]:
    if path.suffix == ".md":
        return [path.read_text()]
    return _docstrings(path) if path.suffix == ".py" else []


def _inside_repo(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def _token_exists(token: str, citing: Path) -> bool:
    """True for an existing file, or a token the module docstring says is not checked."""
    if token.startswith("/"):
        return not token.startswith(MACHINE_PATHS)  # /opt/ros/..., /etc/...: not ours
    first = token.split("/")[0]
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", first) or first in IGNORED:
        return True  # a placeholder, or an output of the command being described
    for base in (citing.parent, ROOT):
        if not _inside_repo(base / token):
            return True
        if (base / token).exists():
            return True
    clean = token.removeprefix("./")
    return any(rel == clean or rel.endswith("/" + clean) for rel in RELATIVE)


def _link_exists(target: str, citing: Path) -> bool:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return True  # a URL, mailto: or an anchor in the same page
    path = citing.parent / target.split("#")[0]
    return not _inside_repo(path) or path.exists()


def _broken_citations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    broken = []
    for text in _texts(path):
        broken += [f"{rel}: {t}" for t in PATH_TOKEN.findall(text) if not _token_exists(t, path)]
        if path.suffix == ".md":
            broken += [f"{rel}: link ({t})" for t in MD_LINK.findall(text)
                       if not _link_exists(t, path)]
    return broken


def test_docs_and_docstrings_cite_only_existing_files() -> None:
    broken = [line for path in FILES for line in _broken_citations(path)]
    assert not broken, ("these docstrings or Markdown files cite files that do not exist (fix "
                        "the path, or say in words what the file held):\n" + "\n".join(broken))


def test_the_check_finds_a_missing_file() -> None:
    """The checker itself: a made-up citation fails, real ones and placeholders pass."""
    citing = ROOT / "docs" / "DESIGN.md"
    assert not _token_exists("reference/OFFICIAL_DUALTALK.md", citing)
    assert not _token_exists("/work/shared/reference/OFFICIAL_DUALTALK.md", citing)
    assert not _link_exists("MISSING.md", citing)
    for token in ("docs/DESIGN.md", "dataset/windows.py", "OUT/train_config.yaml",
                  "runs/sweep/summary.md", "../shared/STYLE.md"):
        assert _token_exists(token, ROOT / "README.md"), token
    assert _link_exists("EXPERIMENTS.md#loss-terms", citing)
    assert _link_exists("https://example.org/a/b.md", citing)
