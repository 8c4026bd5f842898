"""README.md is a front page that stays true: short, its two commands as they are, its figures those
of the committed results, every verb and target listed, every link alive, and every command it
shows run (on a stand-in model: see tests/doc_commands.py). The zoo table of docs/models.md is the
script's output: parameter counts are never typed in by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from exporters.targets.table import target_names
from segedge.models import list_models
from segedge.models.info import fidelity_table

from .doc_commands import COMMAND_1, COMMAND_2, ROOT, install_extras, run_steps, steps

README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
MAX_LINES = 250


def readme() -> str:
    return README.read_text()


def test_readme_is_a_front_page():
    text = readme()
    assert len(text.splitlines()) <= MAX_LINES
    assert not re.search(r"\bissues? \d+|#\d+\b", text, re.IGNORECASE), "no issue numbers in the README"
    timings = re.findall(r"\b\d+(?:\.\d+)?\s?(?:ms|min|minutes|s)\b(?! ?[\w/])", text)
    assert not timings, f"no timings of individual runs in the README: {timings}"
    assert text.index("from runtimes import Predictor") < len(text) // 2, "the Predictor comes early"


def test_the_two_commands_are_there_as_they_are():
    text = readme()
    assert f"```bash\n{COMMAND_1}\n```" in text
    assert f"```bash\n{COMMAND_2}\n```" in text
    assert text.index(COMMAND_1) < text.index(COMMAND_2)


def test_command_1_installs_extras_the_project_has():
    """The install part of command 1 is not run here (the lead runs command 1 on a fresh clone): its extras exist."""
    import tomllib

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installs = [s for s in steps(readme()) if s.kind == "install" and "pip" in s.text]
    assert installs and all(install_extras(s) <= extras for s in installs)
    assert install_extras(installs[0]) == {"export", "report", "openvino"}


def test_every_relative_link_resolves():
    for target in LINK.findall(readme()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (ROOT / path).resolve()
        assert file.is_file(), f"README links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(file.read_text()), f"README links to {target}: no such heading"


def _anchors(markdown: str) -> set[str]:
    """The ids MkDocs (Python-Markdown's toc) gives the page's headings."""
    headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL),
                          re.MULTILINE)
    return {re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}


def test_every_verb_is_named():
    from segedge.cli import app
    import typer

    verbs = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    text = readme()
    missing = [verb for verb in verbs if f"segedge {verb}" not in text]
    assert not missing, f"verbs the README does not name: {missing}"


def test_every_target_has_a_row_linking_its_page():
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)`[^|]*\|[^|]*\| \[[^\]]+\]\(([^)]+)\) \|$",
                                                         readme(), re.MULTILINE)}
    assert set(target_names()) <= set(rows), f"targets without a row: {set(target_names()) - set(rows)}"
    for target in target_names():
        page = ROOT / rows[target]
        assert page.is_file(), f"{target}'s row links to {rows[target]}, which does not exist"
        own = ROOT / "docs" / "targets" / f"{target}.md"
        assert not own.exists() or page == own, f"{target} has its own page, {own.relative_to(ROOT)}: link it"


def test_headline_figures_are_the_committed_results():
    """Each row of "What it finds" is computed from benchmarks/results/trained.json, which the README links."""
    assert "(benchmarks/results/trained.md)" in readme()
    reports = json.loads((ROOT / "benchmarks" / "results" / "trained.json").read_text())["reports"]
    rows = re.findall(r"^\| `(\w+)` \| ([\d.]+) \| [^|]+ \| ([\d.]+)x \| (-?[\d.]+) \| ([^|]+) \|$", readme(), re.MULTILINE)
    assert {r[0] for r in rows} == set(reports)
    for model, miou, speedup, lost, cpu in rows:
        report = reports[model]
        by_label = {row["label"]: row for row in report["rows"]}
        best = by_label[report["best"]["row"]]
        eager = next(row for row in report["rows"] if row["runtime"] == "torch")
        assert miou == f"{eager['miou']:.3f}", model
        assert speedup == f"{eager['p50_ms'] / best['p50_ms']:.2f}", model
        assert lost == f"{best['miou_lost']:.2f}", model  # mIoU points
        assert cpu.strip().split()[0] in report["machine"]["cpu"]["model"], model


def test_docs_zoo_table_matches_the_code():
    assert fidelity_table() in (ROOT / "docs" / "models.md").read_text()


def test_every_registered_model_is_in_the_table():
    table = fidelity_table()
    for spec in list_models():
        assert f"| `{spec.name}` |" in table


# -- every command the README shows, run ------------------------------------------------------------
@pytest.mark.slow
def test_every_command_in_the_readme_runs(newcomer, command_1, cli):
    page_steps = steps(readme())
    assert [s.kind for s in page_steps].count("ci") == 1
    ran = run_steps(page_steps, cli, newcomer, command_1)
    assert ran[0].startswith("segedge report unet --weights demo -o report-unet")
    for name in ("unet_fp32.onnx", "unet_fp16.onnx", "unet_int8.onnx", "unet_int8.xml", "report.json", "index.html"):
        assert (newcomer / "report-unet" / name).is_file(), name
    assert len(list((newcomer / "masks").glob("*_mask.png"))) == 2
    assert (newcomer / "segformer.onnx").is_file() and (newcomer / "dl_int8.xml").is_file()
