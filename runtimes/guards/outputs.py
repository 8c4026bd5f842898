"""What a run may write: never over its own inputs, never over a file segedge did not write.

Every verb that writes calls `check_outputs` before any work, with the paths it will write and the
paths it reads. An output that is one of the inputs (the same file by any name: symlinks and
hard links included) is refused in one line; a verb that converts a file in place (`quantize -o`
the model itself) may name that kind of input in `in_place`, and then `--overwrite` allows it.
An existing file that segedge did not write is refused unless `--overwrite`: segedge recognises
its own earlier outputs by what it puts in them (`written_by_segedge`):

- `.onnx`: the model card in the metadata; `.ort` and OpenVINO `.xml`: the card's JSON inside;
  their sidecars (`.bin`, `.required_operators.config`): their main file beside them
- `.png`: a `segedge` tEXt chunk (`png_info()`, written by every PNG writer of segedge)
- `.npy`: `NAME_proba.npy` beside a segedge `NAME_mask.png` (`predict --proba` writes both)
- a report folder's files: its `report.json` holds segedge's schema; `.html`: segedge's generator tag
- `.mkv`, `.mp4` (mask and overlay videos): the container's comment `VIDEO_COMMENT`, found in its
  first or last 64 KiB (Matroska writes its tags at the head, MP4 its `moov` box at the end)
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import UsageError

if TYPE_CHECKING:
    from PIL.PngImagePlugin import PngInfo

PNG_KEY = "segedge"  # the tEXt keyword segedge's PNGs carry
HTML_GENERATOR = '<meta name="generator" content="segedge">'
REPORT_FILES = ("report.md", "report.json", "index.html", "latency_vs_accuracy.png")
_CARD_METADATA_KEY = b"segedge.card"  # runtimes.model.card.CARD_KEY, as bytes
_CARD_JSON_MARK = b"card_version"  # a key of every card's JSON, however it is embedded
_SIDECARS = {".bin": ".xml", ".config": ".ort"}  # sidecar suffix -> its main file's
VIDEO_COMMENT = "written by segedge"  # the comment segedge's videos carry (runtimes.stream.writers)
_VIDEO_SUFFIXES = (".mkv", ".mp4")
_VIDEO_MARK_SPAN = 64 * 2**10

Input = tuple[str, "str | os.PathLike[str]"]  # (what it is, for the message: "--weights", "the model", ...)


def check_outputs(
    outputs: Iterable[str | os.PathLike[str]],
    inputs: Iterable[Input],
    *,
    overwrite: bool = False,
    in_place: Collection[str] = (),
) -> list[Path]:
    """Refuse, with one `UsageError` line, outputs that clash with inputs or with files segedge did not write.

    `inputs`: (what, path) pairs, every file the run reads. `in_place`: the kinds of input that
    `overwrite` lets the run replace (the caller then replaces it only once the result passed its
    checks). Returns the outputs that replace an input in place.
    """
    by_file, by_path = _index(inputs)
    replaced = []
    for output in map(Path, outputs):
        what = _clash(output, by_file, by_path)
        if what is not None:
            if what in in_place and overwrite:
                replaced.append(output)
                continue
            if what in in_place:
                raise UsageError(f"the output {output} is {what}: pass --overwrite to replace it once the result "
                                 "passes its checks, or choose another output path")
            raise UsageError(f"the output {output} is {what} of this run; choose another output path")
        if not overwrite and output.is_file() and not written_by_segedge(output):
            raise UsageError(f"{output} exists and was not written by segedge; pass --overwrite to replace it, "
                             "or choose another output path")
    return replaced


def _index(inputs: Iterable[Input]) -> tuple[dict[tuple[int, int], str], dict[str, str]]:
    """Inputs by (device, inode), which hard links and symlinks share, and by resolved path."""
    by_file: dict[tuple[int, int], str] = {}
    by_path: dict[str, str] = {}
    for what, path in inputs:
        try:
            stat = os.stat(path)
            by_file.setdefault((stat.st_dev, stat.st_ino), what)
        except OSError:
            pass  # not there (yet): its path still counts
        by_path.setdefault(os.path.realpath(path), what)
    return by_file, by_path


def _clash(output: Path, by_file: dict[tuple[int, int], str], by_path: dict[str, str]) -> str | None:
    try:
        stat = os.stat(output)
        if (stat.st_dev, stat.st_ino) in by_file:
            return by_file[(stat.st_dev, stat.st_ino)]
    except OSError:
        pass
    return by_path.get(os.path.realpath(output))


def would_be_read(output: str | os.PathLike[str], folder: str | os.PathLike[str], recursive: bool,
                  suffixes: Collection[str]) -> bool:
    """Whether a scan of `folder` (its files, or its tree when `recursive`) for `suffixes` finds `output`."""
    out, root = Path(os.path.realpath(output)), Path(os.path.realpath(folder))
    if out.suffix.lower() not in suffixes:
        return False
    return out.parent == root or (recursive and root in out.parents)


# -- recognising segedge's own files ---------------------------------------------------------------
def written_by_segedge(path: str | os.PathLike[str]) -> bool:
    """Whether the existing file `path` is one segedge wrote (see the module's docstring)."""
    path = Path(path)
    name, suffix = path.name.lower(), path.suffix.lower()
    try:
        if name in REPORT_FILES and _is_report_folder(path.parent):
            return True
        if suffix == ".onnx":
            return _onnx_has_card(path)
        if suffix == ".png":
            return PNG_KEY in _png_text_keys(path)
        if suffix == ".npy":
            return name.endswith("_proba.npy") and written_by_segedge(path.with_name(path.name[:-10] + "_mask.png"))
        if suffix in (".ort", ".xml"):
            return _contains(path, _CARD_JSON_MARK)
        if suffix in _SIDECARS:
            main = path.with_name(path.name.removesuffix(".required_operators.config")).with_suffix(_SIDECARS[suffix])
            return main != path and main.is_file() and written_by_segedge(main)
        if suffix in _VIDEO_SUFFIXES:
            return _video_marked(path)
        if suffix == ".html":
            with open(path, "rb") as handle:
                return HTML_GENERATOR.encode() in handle.read(4096)
    except (OSError, ValueError):
        return False  # unreadable or not what its name says: not recognisably segedge's
    return False


def png_info() -> PngInfo:
    """The PngInfo that marks a PNG as segedge's: pass it to `Image.save(..., pnginfo=png_info())`."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, _version())
    return info


def _version() -> str:
    try:
        from importlib.metadata import version

        return f"segedge {version('segedge')}"
    except Exception:  # noqa: BLE001 - not installed as a distribution (a source checkout)
        return "segedge"


def _is_report_folder(folder: Path) -> bool:
    report = folder / "report.json"
    if not report.is_file() or report.stat().st_size > 64 * 2**20:
        return False
    data = json.loads(report.read_text(encoding="utf-8"))
    return isinstance(data, dict) and str(data.get("schema", "")).startswith("segedge.")


def _png_text_keys(path: Path) -> set[str]:
    """The keywords of a PNG's tEXt / iTXt / zTXt chunks, read chunk by chunk up to the image data."""
    keys: set[str] = set()
    with open(path, "rb") as handle:
        if handle.read(8) != b"\x89PNG\r\n\x1a\n":
            return keys
        while True:
            head = handle.read(8)
            if len(head) < 8:
                return keys
            size, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind in (b"IDAT", b"IEND"):  # Pillow writes text chunks before the image data
                return keys
            if kind in (b"tEXt", b"iTXt", b"zTXt") and size < 2**20:
                keys.add(handle.read(size).split(b"\0", 1)[0].decode("latin-1"))
                handle.seek(4, os.SEEK_CUR)
            else:
                handle.seek(size + 4, os.SEEK_CUR)


def _onnx_has_card(path: Path) -> bool:
    """Walk the ModelProto's top-level fields, skipping the graph, to its metadata_props (field 14)."""
    with open(path, "rb") as handle:
        end = os.fstat(handle.fileno()).st_size
        while handle.tell() < end:
            key = _varint(handle)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _varint(handle)
            elif wire == 2:
                size = _varint(handle)
                if number == 14 and size < 2**24:
                    if _entry_key(handle.read(size)) == _CARD_METADATA_KEY:
                        return True
                else:
                    handle.seek(size, os.SEEK_CUR)
            elif wire in (1, 5):
                handle.seek(8 if wire == 1 else 4, os.SEEK_CUR)
            else:
                return False  # not a protobuf we understand
    return False


def _varint(handle: BinaryIO) -> int:
    result = shift = 0
    while True:
        byte = handle.read(1)
        if not byte or shift > 63:
            raise ValueError("truncated varint")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7


def _entry_key(entry: bytes) -> bytes | None:
    """Field 1 (the key) of a StringStringEntryProto."""
    if len(entry) < 2 or entry[0] != 0x0A:  # field 1, length-delimited
        return None
    size, pos, shift = 0, 1, 0
    while pos < len(entry):
        byte = entry[pos]
        size |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return entry[pos : pos + size]
        shift += 7
    return None


def _video_marked(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(_VIDEO_MARK_SPAN)
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - _VIDEO_MARK_SPAN))
        tail = handle.read()
    return any(VIDEO_COMMENT.encode() in part for part in (head, tail))


def _contains(path: Path, needle: bytes) -> bool:
    if path.stat().st_size == 0:
        return False
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(needle) >= 0


def inputs_of(what: str, paths: Sequence[str | os.PathLike[str]] | None) -> list[Input]:
    """(what, path) for each of `paths` (none for None): `inputs_of("a calibration image", images)`."""
    return [(what, p) for p in paths or ()]
