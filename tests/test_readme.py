"""The README's zoo table is the script's output: parameter counts are never typed in by hand."""

from pathlib import Path

from segedge.models import list_models
from segedge.models.info import fidelity_table


def test_readme_zoo_table_matches_the_code():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert fidelity_table() in readme


def test_every_registered_model_is_in_the_table():
    table = fidelity_table()
    for spec in list_models():
        assert f"| `{spec.name}` |" in table
