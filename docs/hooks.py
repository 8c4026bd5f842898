"""MkDocs hooks (mkdocs.yml `hooks:`): the CLI pages are checked against --help, and the files of
the repository that the pages link to are published with the site.

The pages link to repository files by their real relative path (`../benchmarks/results/trained.md`),
so the links work on GitHub too. The site has no `..`: each such file is published under `repo/`
(a Markdown file as a page, with the files it links to in turn) and the link is rewritten to it.
A link to a file that does not exist is left as it is, so `mkdocs build --strict` fails on it.
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files, InclusionLevel

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PUBLISHED = "repo"
# A Markdown link or image target: `](target)` or `](target "title")`; not URLs, not anchors alone.
LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)((?:\s+\"[^\"]*\")?)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def on_pre_build(config: Any) -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import gen_cli
    finally:
        sys.path.remove(str(DOCS))
    found = gen_cli.problems(gen_cli.expected_pages())
    if found:
        raise PluginError("the CLI pages differ from the live CLI: " + "; ".join(found)
                          + " (run `python docs/gen_cli.py` and commit docs/cli/)")


def on_files(files: Files, config: Any) -> Files:
    """Publish every repository file outside docs/ that a page (or a published page) links to."""
    queue = [DOCS / f.src_uri for f in files.documentation_pages()]
    published: set[Path] = set()
    while queue:
        page = queue.pop()
        for target in _outside_targets(page):
            if target in published:
                continue
            published.add(target)
            files.append(File.generated(config, _site_uri(target), abs_src_path=str(target),
                                        inclusion=InclusionLevel.NOT_IN_NAV))
            if target.suffix == ".md":
                queue.append(target)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point a docs page's links to repository files at their published copies."""
    source = Path(page.file.abs_src_path)
    if not source.is_relative_to(DOCS):
        return markdown  # a published repository file: its relative links already match the copies

    def rewrite(match: re.Match[str]) -> str:
        target, anchor = _split(match.group(1))
        resolved = _outside(source, target)
        if resolved is None:
            return match.group(0)
        here = posixpath.dirname(page.file.src_uri)
        return f"]({posixpath.relpath(_site_uri(resolved), here or '.')}{anchor}{match.group(2)})"

    return _outside_code(markdown, lambda text: LINK.sub(rewrite, text))


def _outside_targets(page: Path) -> list[Path]:
    text = FENCE.sub("", page.read_text())
    found = (_outside(page, _split(m.group(1))[0]) for m in LINK.finditer(text))
    return [path for path in found if path is not None]


def _outside(page: Path, target: str) -> Path | None:
    """The repository file outside docs/ that `target` (relative to `page`) names, if it exists."""
    if not target:
        return None
    resolved = (page.parent / target).resolve()
    inside_repo = resolved.is_relative_to(ROOT) and not resolved.is_relative_to(DOCS)
    return resolved if inside_repo and resolved.is_file() else None


def _site_uri(path: Path) -> str:
    return f"{PUBLISHED}/{path.relative_to(ROOT).as_posix()}"


def _split(target: str) -> tuple[str, str]:
    path, hash_, anchor = target.partition("#")
    return path, f"{hash_}{anchor}"


def _outside_code(markdown: str, change: Any) -> str:
    """Apply `change` to the text between fenced code blocks only."""
    pieces, last = [], 0
    for fence in FENCE.finditer(markdown):
        pieces += [change(markdown[last:fence.start()]), fence.group(0)]
        last = fence.end()
    return "".join(pieces + [change(markdown[last:])])
