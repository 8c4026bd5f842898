"""The documentation site: CLI pages equal to the live --help, a strict build that fails on what is
broken, and every command of docs/getting-started.md run (on a stand-in: tests/doc_commands.py).
.ci/run builds the real site with `mkdocs build --strict`."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .doc_commands import COMMAND_1, COMMAND_2, ROOT, run_steps, steps

GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def _gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_pages_match_the_live_help():
    done = subprocess.run([sys.executable, "docs/gen_cli.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_check_names_a_stale_page_a_missing_page_and_a_nav_gap():
    gen_cli = _gen_cli()
    committed = {path: path.read_text() for path in gen_cli.CLI_DIR.glob("*.md")}
    info = gen_cli.CLI_DIR / "info.md"
    expected = {**committed, info: committed[info] + "│ --new-option  <bool>  Something new. │\n",
                gen_cli.CLI_DIR / "newverb.md": "# segedge newverb\n"}
    assert gen_cli.problems(expected) == ["docs/cli/info.md differs from the live --help",
                                          "docs/cli/newverb.md is missing",
                                          "mkdocs.yml's nav does not list cli/newverb.md"]
    del expected[info]
    assert "docs/cli/info.md documents no verb the CLI has" in gen_cli.problems(expected)
    assert gen_cli.problems(committed) == []


def test_every_verb_page_is_the_verbs_help():
    gen_cli = _gen_cli()
    for verb in gen_cli.verbs():
        page = (gen_cli.CLI_DIR / f"{verb}.md").read_text()
        assert f"Usage: segedge {verb} [OPTIONS]" in page and "--help" in page


@pytest.mark.slow
def test_the_strict_build_fails_on_a_broken_link_a_missing_page_and_an_unresolved_reference(tmp_path):
    """A copy of the site with one of each: the build exits non-zero and names every one."""
    for part in ("docs", "benchmarks/results"):
        shutil.copytree(ROOT / part, tmp_path / part)
    config = (ROOT / "mkdocs.yml").read_text()
    assert config.rstrip().rsplit("\n", 1)[-1].startswith("  "), "nav is mkdocs.yml's last key"
    (tmp_path / "mkdocs.yml").write_text(config.rstrip() + "\n  - Gone: gone.md\n")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\n[a page](no-such-page.md), [a result](../benchmarks/results/none.md), "
                     "[the class][runtimes.NoSuchClass]\n")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode != 0
    for named in ("no-such-page.md", "../benchmarks/results/none.md", "gone.md", "runtimes.NoSuchClass"):
        assert named in done.stderr, (named, done.stderr[-3000:])


def test_getting_started_shows_the_two_commands():
    text = GETTING_STARTED.read_text()
    assert f"```bash\n{COMMAND_1}\n```" in text
    assert f"```bash\n{COMMAND_2}\n```" in text


@pytest.mark.slow
def test_every_command_in_getting_started_runs(newcomer, command_1, cli):
    ran = run_steps(steps(GETTING_STARTED.read_text()), cli, newcomer, command_1)
    assert ran[:3] == ["segedge report unet --weights demo -o report-unet " + " ".join(_faster("report")),
                       "segedge predict report-unet/unet_int8.xml photos/ -o masks/ --overlay",
                       "segedge info report-unet/unet_int8.xml"]
    assert sorted(p.name for p in (newcomer / "masks").iterdir()) == sorted(
        f"{p.stem}_{kind}.png" for p in (newcomer / "photos").iterdir() for kind in ("mask", "overlay"))


def _faster(verb: str) -> list[str]:
    from .doc_commands import FASTER

    return FASTER[verb]
