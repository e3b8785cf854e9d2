"""Network streams: a local HTTP server on 127.0.0.1 (MJPEG, or a video file) read through
OpenCV's FFmpeg backend; a dropped connection reconnects; limits stop the stream."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from humanpose.inference.sources import SourceError, StreamSource, is_stream_url

BOUNDARY = "frameboundary"


def _level(i: int) -> int:
    """The grey level of the server's i-th frame (read back through JPEG)."""
    return (i * 37) % 200 + 20


class _MjpegHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``frames_per_connection`` JPEG frames as multipart/x-mixed-replace, counting
    on from where the previous connection stopped, then closes the connection."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.connections += 1
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.end_headers()
        try:
            for _ in range(server.frames_per_connection):
                image = np.full((48, 64, 3), _level(server.sent), np.uint8)
                data = cv2.imencode(".jpg", image)[1].tobytes()
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                server.sent += 1
                time.sleep(server.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def mjpeg_server():
    servers = []

    def start(frames_per_connection: int, delay: float = 0.0):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MjpegHandler)
        server.daemon_threads = True
        server.frames_per_connection, server.delay = frames_per_connection, delay
        server.connections = server.sent = 0
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_stream_urls_are_recognised():
    assert is_stream_url("rtsp://cam.local/stream") and is_stream_url("HTTP://x/y.mjpg")
    assert is_stream_url("udp://127.0.0.1:1234") and is_stream_url("https://x/v.mp4")
    assert not is_stream_url("video.mp4") and not is_stream_url(0)
    with pytest.raises(SourceError, match="not a stream URL"):
        StreamSource("video.mp4")


def test_dropped_mjpeg_stream_reconnects_and_frame_indices_go_on(mjpeg_server):
    server, url = mjpeg_server(frames_per_connection=6)
    source = StreamSource(url, reconnect=2, max_frames=15, backoff=0.01, timeout=5)
    frames = list(source)
    source.close()
    assert [f.index for f in frames] == list(range(15))  # max_frames stops it exactly
    assert server.connections >= 3 and source.reconnects >= 2
    # Every frame is a new one from the server, in order: nothing lost or repeated.
    levels = [int(round(f.image.mean())) for f in frames]
    assert all(abs(a - _level(i)) <= 3 for i, a in enumerate(levels)), levels
    stamps = [f.timestamp for f in frames]
    assert stamps[0] == 0.0 and all(b >= a for a, b in zip(stamps, stamps[1:]))
    assert frames[0].image.shape == (48, 64, 3) and frames[0].name == "stream_000000"


def test_stream_without_reconnect_stops_when_the_connection_drops(mjpeg_server):
    server, url = mjpeg_server(frames_per_connection=5)
    frames = list(StreamSource(url, reconnect=0, backoff=0.01, timeout=5))
    assert len(frames) == 5 and server.connections == 1


def test_duration_stops_an_endless_stream(mjpeg_server):
    _, url = mjpeg_server(frames_per_connection=10_000, delay=0.02)
    start = time.monotonic()
    frames = list(StreamSource(url, duration=0.3, timeout=5))
    assert time.monotonic() - start < 3.0
    assert 3 <= len(frames) < 100 and frames[-1].timestamp <= 0.3


def test_video_file_over_http(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), _level(i), np.uint8))
    writer.release()
    handler = functools.partial(_QuietFiles, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        source = StreamSource(url, reconnect=0, timeout=5)
        assert source.fps == pytest.approx(25.0)
        frames = list(source)
    finally:
        server.shutdown()
        server.server_close()
    assert len(frames) == 12
    assert all(abs(f.image.mean() - _level(i)) <= 3 for i, f in enumerate(frames))


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_unreachable_stream_is_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError, match="cannot open stream http://127.0.0.1"):
        StreamSource(f"http://127.0.0.1:{port}/none.mjpg", timeout=2)
