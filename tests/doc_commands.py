"""Run the commands a page shows (README.md, docs/getting-started.md) as a newcomer would type them.

Each `bash` block line and each `python` block of the page runs, in order, in one folder. The
pages show the real job (DeepLab v3+ ResNet-50 at 512x512, trained for minutes); the tests run the
same commands on a stand-in that takes seconds, and say so here, in one place:

- the model `deeplabv3plus` is `unet` with the suite's `segedge.train.recipe.SMALL` as its demo
  recipe (trained once per test run by the `demo_models` fixture, found through $SEGEDGE_CACHE),
  so `--weights demo` and every file name derived from the model name keep their meaning;
- sizes shrink (STAND_IN), and `report`, `export` and `bench` get the options of FASTER (fewer
  timed runs and images, no `torch.compile`, the stand-in's 64x64 input size);
- command 1's `segedge report` runs once per test session (the `command_1` fixture): both pages
  show it, and each page's test gets the folder it wrote;
- an install (`python3 -m venv`, `pip install`) is not run: `install_extras` returns the extras it
  names so that a test can check them against pyproject.toml; `bash .ci/run` is CI itself.

Everything else is the page's text: a command the pages change is run as changed.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND_1 = ('python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e ".[export,report,openvino]" && '
             ".venv/bin/segedge report deeplabv3plus --weights demo -o report-deeplabv3plus")
COMMAND_2 = "bash .ci/run"

STAND_IN = [("deeplabv3plus", "unet"), ("512x512", "64x64"), ("256x256", "64x64"),
            ("192x320,320x192", "64x96,96x64")]
FASTER = {
    "report": ["--input-size", "64x64", "--runs", "2", "--warmup", "1", "--runtimes", "onnxruntime,openvino,torch",
               "--samples", "1", "--data-limit", "20", "--calib-count", "8"],
    "export": ["--input-size", "64x64"],
    "bench": ["--runs", "2", "--warmup", "1"],
}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Step:
    kind: str  # "segedge" (argv for segedge's main), "python" (source), "install", "ci", "file" (models.py)
    text: str  # the page's text of the step
    argv: tuple[str, ...] = ()


def blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(markdown)]


def steps(markdown: str) -> list[Step]:
    found: list[Step] = []
    for language, body in blocks(markdown):
        if language == "python":
            first = body.splitlines()[0].strip()
            found.append(Step("file" if first.startswith("# ") and first.endswith(".py") else "python", body))
        elif language == "bash":
            for line in body.splitlines():
                command = line.split(" #")[0].strip()
                if command:
                    found.extend(_shell_steps(command))
    return found


def _shell_steps(command: str) -> list[Step]:
    if command == COMMAND_2:
        return [Step("ci", command)]
    result = []
    for part in command.split(" && "):
        argv = shlex.split(part)
        program = Path(argv[0]).name
        if program in ("python3", "pip"):
            result.append(Step("install", part, tuple(argv)))
        elif program == "segedge":
            result.append(Step("segedge", part, tuple(stand_in_args(argv[1:]))))
        else:
            raise AssertionError(f"a page shows a command the doc tests do not know how to run: {part}")
    return result


def stand_in_args(args: list[str]) -> list[str]:
    """The page's segedge arguments for the stand-in model (see the module docstring)."""
    changed = [_replace(a) for a in args]
    extra = FASTER.get(changed[0], []) if changed else []
    for option, value in zip(extra[::2], extra[1::2]):
        if option not in changed:  # the page's own value (after STAND_IN) wins
            changed += [option, value]
    return changed


def stand_in_text(text: str) -> str:
    return _replace(text)


def _replace(text: str) -> str:
    for old, new in STAND_IN:
        text = text.replace(old, new)
    return text


def install_extras(step: Step) -> set[str]:
    """The extras a `pip install ... -e ".[a,b]"` names."""
    extras: set[str] = set()
    for arg in step.argv:
        m = re.fullmatch(r"\.?\[([\w,-]+)\]", arg.lstrip("."))
        if m:
            extras |= set(m.group(1).split(","))
    return extras


@contextlib.contextmanager
def stand_in(demo_models, folder: Path) -> Iterator[None]:
    """In `folder`, with unet's demo recipe the suite's trained SMALL, found in its cache."""
    from segedge.train import demo
    from segedge.train.recipe import SMALL

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(demo.RECIPES, "unet", SMALL)
        patch.setenv("SEGEDGE_CACHE", str(demo_models.trained.folder.parent.parent))
        patch.chdir(folder)
        patch.setattr(sys, "path", [str(folder), *sys.path])  # models.py:NAME, as segedge finds it in the current folder
        yield


def output_folder(argv: tuple[str, ...]) -> str:
    return argv[argv.index("-o") + 1]


def run_steps(page_steps: list[Step], cli: Callable[..., tuple[int, str, str]], folder: Path,
              done: Mapping[tuple[str, ...], Path]) -> list[str]:
    """Run every step in `folder` (the caller is in it, under `stand_in`); the commands run, as text.

    `done`: commands run before (argv -> the folder they wrote): their folder is copied, not made again.
    """
    ran = []
    for step in page_steps:
        if step.argv in done:
            shutil.copytree(done[step.argv], folder / output_folder(step.argv), dirs_exist_ok=True)
            ran.append("segedge " + " ".join(step.argv))
        elif step.kind == "segedge":
            code, out, err = cli(*step.argv)
            assert code == 0, f"`{step.text}` (run as `segedge {' '.join(step.argv)}`) exited {code}: {err[-2000:]}"
            ran.append("segedge " + " ".join(step.argv))
        elif step.kind == "python":
            exec(compile(stand_in_text(step.text), f"<{step.text.splitlines()[0]}>", "exec"), {"__name__": "__doc__"})
            ran.append(step.text.splitlines()[0])
        elif step.kind == "file":
            name = step.text.splitlines()[0].strip()[2:]
            (folder / name).write_text(step.text)
            ran.append(f"wrote {name}")
    return ran
