"""A runtime's error in one line a user can read: no source paths, no C++ signatures, no code prefixes."""

from __future__ import annotations

import re

# A runtime's own source location and C++ signature inside its message: "/onnxruntime_src/.../
# element_wise_ops.h:560 void onnxruntime::BroadcastIterator::Append(ptrdiff_t, ptrdiff_t) axis == 1 ||
# axis == largest was false." - the user learns nothing from it but where the runtime was built.
_SOURCE_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/]?(?:[\w.+-]+[\\/])+[\w.+-]+\.(?:h|hpp|cc|cpp|cxx|c|inl)(?::\d+)?")
_SIGNATURE = re.compile(r"^\s*(?:[\w:<>,*&~ ]+?\s)?[\w:<>~]+::[\w<>~]+\([^)]*\)(?:\s*const)?")
_ASSERTION = re.compile(r"^\s*[^.]*? was false\.")


def runtime_reason(exc: BaseException) -> str:
    """The first line of a runtime's error, without ORT's code prefix or any source path and C++ signature."""
    for line in str(exc).splitlines():  # OpenVINO's first lines are "Exception from src/...cpp:224:" only
        text = line.split(" : ")[-1] if line.startswith("[ONNXRuntimeError]") else line
        while (found := _SOURCE_PATH.search(text)) is not None:
            rest = _ASSERTION.sub("", _SIGNATURE.sub("", text[found.end():]))
            text = (text[:found.start()].rstrip() + " " + rest.strip()).strip()
        text = re.sub(r"\s+", " ", re.sub(r"^(Exception from|Check .* failed at)\s*:?", "", text)).strip(" :")
        if text:
            return text
    return type(exc).__name__
