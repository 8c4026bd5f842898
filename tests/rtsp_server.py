"""An RTSP server on 127.0.0.1 for tests/test_video_stream.py: GStreamer's gst-rtsp-server, as an IP camera would
serve, sending a live test pattern as motion JPEG over RTP at rtsp://127.0.0.1:PORT/live.

    /usr/bin/python3 tests/rtsp_server.py PORT WIDTH HEIGHT FPS

Run by the system's Python, which has GStreamer's bindings (Debian: python3-gst-1.0, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-good); segedge's venv does not. Prints "ready" once it listens; runs until killed.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

port, width, height, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
# RTP's JPEG payload carries 4:2:0 or 4:2:2 YUV only: I420 in, or the payloader drops every frame.
factory.set_launch(f"( videotestsrc is-live=true ! video/x-raw,format=I420,width={width},height={height},"
                   f"framerate={rate}/1 ! jpegenc ! rtpjpegpay name=pay0 pt=96 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/live", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
