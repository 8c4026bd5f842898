"""The onnxruntime-web files a web folder ships: from npm at export time, or from a local copy.

Only what the WASM execution provider needs (`FILES`, from the package's dist/): the ES module
`ort.wasm.min.mjs`, the Emscripten glue it imports and the SIMD + threads WebAssembly binary
(about 15 MB). The version is pinned (`VERSION`): the one segedge's browser tests run; the files
are fetched with `npm pack onnxruntime-web@VERSION` (npm's registry, npm's cache), or taken from
`--ort-web DIR`: an unpacked package (with package.json and dist/), its dist/ folder, or the
.tgz `npm pack` wrote.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from runtimes.errors import ExportError, UsageError

PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
NPM_TIMEOUT_S = 600
HOW = (f"run `npm pack {PACKAGE}@{VERSION}` where npm reaches its registry, unpack it (tar xzf), and pass "
       "--ort-web <the unpacked package folder>")


@dataclass(frozen=True)
class OrtWeb:
    version: str  # as the package says ("unknown" for a bare dist/ folder)
    source: str  # "npm" or the local path
    files: dict[str, str]  # file name -> sha256

    def to_dict(self) -> dict[str, object]:
        return {"package": PACKAGE, "version": self.version, "source": self.source, "files": self.files}


def fetch_ort_web(into: Path, work: Path, local: Path | None = None) -> OrtWeb:
    """Copy the runtime files into the folder `into`; from `local` when given, else from npm (in `work`)."""
    if local is not None:
        check_ort_web_source(local)
        dist, version = _local(local, work)
        source = str(local)
    else:
        dist, version = _from_npm(work)
        source = "npm"
    missing = [name for name in FILES if not (dist / name).is_file()]
    if missing:
        raise UsageError(f"{PACKAGE} at {source} lacks {', '.join(missing)} in dist/; {HOW}")
    into.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name in FILES:
        shutil.copyfile(dist / name, into / name)
        hashes[name] = hashlib.sha256((into / name).read_bytes()).hexdigest()
    return OrtWeb(version, source, hashes)


def check_ort_web_source(local: Path | None) -> None:
    """Refuse, before any work, a local copy that is not there, or no local copy and no npm."""
    if local is not None:
        if not local.exists():
            raise UsageError(f"--ort-web {local}: no such file or folder; {HOW}")
    elif shutil.which("npm") is None:
        raise UsageError(f"the web target ships {PACKAGE} {VERSION} from npm, and npm is not on PATH: {HOW}")


def _from_npm(work: Path) -> tuple[Path, str]:
    check_ort_web_source(None)
    npm = shutil.which("npm")
    assert npm is not None
    try:
        done = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", str(work)],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ExportError(f"`npm pack {PACKAGE}@{VERSION}` took over {NPM_TIMEOUT_S} s; {HOW}") from None
    archives = sorted(work.glob("*.tgz"))
    if done.returncode != 0 or len(archives) != 1:
        last = (done.stderr.strip().splitlines() or ["no archive written"])[-1]
        raise ExportError(f"`npm pack {PACKAGE}@{VERSION}` failed ({last}); {HOW}")
    return _unpacked(archives[0], work)


def _local(path: Path, work: Path) -> tuple[Path, str]:
    if path.is_file() and path.name.endswith(".tgz"):
        return _unpacked(path, work)
    if (path / "dist").is_dir():
        return path / "dist", _version(path / "package.json")
    if path.is_dir():
        return path, _version(path.parent / "package.json")
    raise UsageError(f"--ort-web {path}: not an unpacked {PACKAGE} package, its dist/ folder or its .tgz")


def _unpacked(archive: Path, work: Path) -> tuple[Path, str]:
    target = work / "unpacked"
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ExportError(f"cannot unpack {archive.name}: {exc}") from None
    return target / "package" / "dist", _version(target / "package" / "package.json")


def _version(package_json: Path) -> str:
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    if data.get("name") != PACKAGE:
        raise UsageError(f"{package_json} is the package {data.get('name')!r}, not {PACKAGE}")
    return str(data.get("version", "unknown"))
