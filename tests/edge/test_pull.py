"""`fieldlens-edge pull` against a server on 127.0.0.1 that speaks the documented protocol:
a good model is verified and swapped in; a tampered one is refused and changes nothing."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge.pull import PullError, pull

TOKEN = "team-secret"


class ModelServer:
    def __init__(self, files: dict[str, bytes], model_id: int = 7, tamper: bool = False) -> None:
        self.files = files
        served = dict(files)
        if tamper:
            served["model_int8.tflite"] = files["model_int8.tflite"][:-1] + b"X"
        manifest = {
            "model_id": model_id,
            "name": "shapes",
            "files": {
                key: {
                    "path": name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "url": f"/api/v1/models/{model_id}/files/{name}",
                }
                for key, (name, data) in {
                    "int8": ("model_int8.tflite", files["model_int8.tflite"]),
                    "labels": ("labels.txt", files["labels.txt"]),
                }.items()
            },
        }
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.send_response(401)
                    self.end_headers()
                    return
                if self.path == "/api/v1/models/latest":
                    body = json.dumps(manifest).encode()
                elif self.path.startswith(f"/api/v1/models/{model_id}/files/"):
                    body = served[self.path.rsplit("/", 1)[1]]
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.requests = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def model_files() -> dict[str, bytes]:
    return {"model_int8.tflite": b"TFL3" * 1000, "labels.txt": b"ball\ngoal\n"}


def test_good_model_is_verified_and_swapped_in(model_files, tmp_path) -> None:
    server = ModelServer(model_files)
    try:
        version = pull(server.url, TOKEN, tmp_path / "models")
        current = tmp_path / "models" / "current"
        assert current.is_symlink() and current.resolve() == version.resolve()
        assert (current / "model_int8.tflite").read_bytes() == model_files["model_int8.tflite"]
        assert (current / "labels.txt").read_bytes() == model_files["labels.txt"]
        assert json.loads((current / "manifest.json").read_text())["model_id"] == 7
        before = server.requests
        assert pull(server.url, TOKEN, tmp_path / "models") == version  # already there: no download
        assert server.requests == before + 1
    finally:
        server.close()


def test_tampered_model_is_refused_and_current_is_unchanged(model_files, tmp_path) -> None:
    good = ModelServer(model_files, model_id=1)
    try:
        first = pull(good.url, TOKEN, tmp_path / "models")
    finally:
        good.close()
    bad = ModelServer({**model_files, "model_int8.tflite": b"TFL3" * 999 + b"NEW!"}, model_id=2, tamper=True)
    try:
        with pytest.raises(PullError, match=r"sha256 mismatch for model_int8.tflite"):
            pull(bad.url, TOKEN, tmp_path / "models")
    finally:
        bad.close()
    assert (tmp_path / "models" / "current").resolve() == first.resolve()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["current", first.name]


def test_wrong_token_and_bad_server_are_clear(model_files, tmp_path) -> None:
    server = ModelServer(model_files)
    try:
        with pytest.raises(PullError, match="refused the token"):
            pull(server.url, "wrong", tmp_path / "m")
    finally:
        server.close()
    with pytest.raises(PullError, match="http:// or https://"):
        pull("ftp://example.org", TOKEN, tmp_path / "m")
    assert not (tmp_path / "m" / "current").exists()
