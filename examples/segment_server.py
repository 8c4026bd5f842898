"""A segmentation web service on the runtime install alone (numpy, onnxruntime, Pillow; no torch).

POST an image in any format Pillow reads; the answer is its class mask, a palette PNG:
    python examples/segment_server.py model.onnx --port 8000 &
    curl --data-binary @photo.jpg http://127.0.0.1:8000/ > mask.png
"""

import argparse
import io
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runtimes import Predictor
from runtimes.errors import ImageError
from runtimes.imaging.postprocess import palette_image

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("model")
parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
args = parser.parse_args()
predictor = Predictor(args.model)  # one Predictor, shared by every request thread


class Segment(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            mask = predictor.predict(io.BytesIO(body))
        except ImageError as exc:
            return self.send_error(400, str(exc))
        png = io.BytesIO()
        palette_image(mask, predictor.card.colors()).save(png, format="PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")  # HTTP/1.0: the body ends when the connection closes
        self.end_headers()
        self.wfile.write(png.getvalue())


server = ThreadingHTTPServer(("127.0.0.1", args.port), Segment)
print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
