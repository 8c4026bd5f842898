"""Serve this folder on http://127.0.0.1 with the headers that make the page cross-origin isolated.

    python3 serve.py [PORT]        (or: segedge serve FOLDER --port PORT)

onnxruntime-web runs WASM on several threads only when `crossOriginIsolated` is true, which needs
`Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` on the
page; a plain file server leaves them off and the model quietly runs on one thread. Your own web
server needs the same two headers (and `application/wasm` for .wasm files). Standard library only.
"""

from __future__ import annotations

import functools
import http.server
import sys
from pathlib import Path

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Files of one folder, with the cross-origin isolation headers and no caching."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".onnx": "application/octet-stream",
                      ".ort": "application/octet-stream"}

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # one line per request is noise here
        pass


def make_server(folder: str | Path, port: int = 0, handler: type[IsolatedHandler] = IsolatedHandler,
                ) -> http.server.ThreadingHTTPServer:
    """A server of `folder` on 127.0.0.1:`port` (0: a free port; `server.server_port` says which)."""
    bound = functools.partial(handler, directory=str(folder))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), bound)


def main(argv: list[str]) -> int:
    port = int(argv[0]) if argv else 8000
    server = make_server(Path(__file__).resolve().parent, port)
    print(f"serving {Path(__file__).resolve().parent} on http://127.0.0.1:{server.server_port}/ "
          "(cross-origin isolated; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
