"""The review grid: a paged web page of a prepared dataset where clicking marks an image as bad.

Marks are saved (atomically, after every click) as a key list, one key per line: the exclude file
that make_pipeline(source=<dataset>, exclude=<marks file>) and the next training run skip. Nothing
in the dataset is deleted or changed; unmarking is a second click. By default the marks file is
<dataset>/review_exclude.txt.

Standard library only (http.server): make_review_server() returns a ThreadingHTTPServer; a later
web app may mount the same handler. Endpoints:
  GET  /                      the page
  GET  /api/info              {"num_examples", "image_shape", "page_size", "num_pages", "marked", "marks_file"}
  GET  /api/page?page=N       {"page", "num_pages", "items": [{"index", "key", "bad"}]}
  GET  /api/image?index=I     the example's PNG, as stored
  POST /api/mark              body {"key": K, "bad": true|false} -> {"key", "bad", "marked"}
"""
from __future__ import annotations

import http.server
import json
import os
import struct
import threading
import urllib.parse

from stylegan_jax.atomic import write_text_atomically
from stylegan_jax.data.prepared import REVIEW_MARKS_FILE, read_prepared_info
from stylegan_jax.data.tf_cpu import tensorflow_on_cpu
from stylegan_jax.prep.review_page import REVIEW_PAGE


def tfrecord_offsets(path: str) -> list[tuple[int, int]]:
    """(data offset, data length) of every record of a TFRecord file, by reading only the framing
    (uint64 length, uint32 length CRC, data, uint32 data CRC), so images can be served by index."""
    offsets = []
    with open(path, "rb") as file:
        position = 0
        while True:
            header = file.read(12)
            if not header:
                return offsets
            if len(header) < 12:
                raise ValueError(f"{path} is truncated at byte {position}: re-run the preparation tool")
            (length,) = struct.unpack("<Q", header[:8])
            offsets.append((position + 12, length))
            position += 12 + length + 4
            file.seek(position)


class PreparedIndex:
    """Random access to a prepared dataset's examples: keys in dataset order, PNG bytes by index."""

    def __init__(self, data_dir: str):
        self.data_dir = os.fspath(data_dir)
        self.info = read_prepared_info(self.data_dir)
        self.keys, self._records = [], []
        for shard in self.info["shards"]:
            record_path = os.path.join(self.data_dir, shard["file"])
            with open(os.path.splitext(record_path)[0] + ".json", encoding="utf-8") as file:
                keys = json.load(file)["keys"]
            offsets = tfrecord_offsets(record_path)
            if len(offsets) != len(keys):
                raise ValueError(f"{record_path} holds {len(offsets)} records but its index lists {len(keys)} keys: "
                                 "re-run the preparation tool")
            self.keys.extend(keys)
            self._records.extend((record_path, offset, length) for offset, length in offsets)
        self.position = {key: index for index, key in enumerate(self.keys)}
        self._example = tensorflow_on_cpu().train.Example

    def png(self, index: int) -> bytes:
        path, offset, length = self._records[index]
        with open(path, "rb") as file:
            file.seek(offset)
            example = self._example.FromString(file.read(length))
        return example.features.feature["image"].bytes_list.value[0]


class ReviewMarks:
    """The set of keys marked bad, saved atomically to a key-list file after every change.

    Keys already in the file (an earlier review, or written by hand) are kept, even ones this
    dataset does not hold; the file lists dataset keys in dataset order, then the others sorted."""

    def __init__(self, path: str, dataset_keys: list[str]):
        self.path = path
        self._order = {key: index for index, key in enumerate(dataset_keys)}
        self._lock = threading.Lock()
        self.keys = set()
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                self.keys = {line.strip() for line in file if line.strip()}

    def set(self, key: str, bad: bool) -> int:
        """Marks (bad=True) or unmarks key; returns the number of marked keys."""
        with self._lock:
            (self.keys.add if bad else self.keys.discard)(key)
            ordered = sorted(self.keys, key=lambda k: (k not in self._order, self._order.get(k, 0), k))
            write_text_atomically(self.path, "".join(key + "\n" for key in ordered))
            return len(self.keys)


class ReviewHandler(http.server.BaseHTTPRequestHandler):
    """Serves the review page; the server object carries .index, .marks and .page_size."""

    def log_message(self, format, *args):  # keep the console for the progress of the person reviewing
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store" if content_type.startswith("application/json") else "max-age=3600")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _number(self, query: dict, name: str, default: int | None = None) -> int | None:
        try:
            return int(query.get(name, [default])[0])
        except (TypeError, ValueError):
            return None

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        index, marks, page_size = self.server.index, self.server.marks, self.server.page_size
        num_pages = max(1, -(-len(index.keys) // page_size))
        if url.path == "/":
            self._send(200, REVIEW_PAGE.encode(), "text/html; charset=utf-8")
        elif url.path == "/api/info":
            height, width = index.info["image_shape"]
            self._json({"num_examples": len(index.keys), "image_shape": [height, width], "page_size": page_size,
                        "num_pages": num_pages, "marked": len(marks.keys), "marks_file": marks.path})
        elif url.path == "/api/page":
            page = self._number(query, "page", 0)
            if page is None or not 0 <= page < num_pages:
                return self._json({"error": f"page must be an integer in 0..{num_pages - 1}"}, 400)
            indices = range(page * page_size, min(len(index.keys), (page + 1) * page_size))
            self._json({"page": page, "num_pages": num_pages,
                        "items": [{"index": i, "key": index.keys[i], "bad": index.keys[i] in marks.keys}
                                  for i in indices]})
        elif url.path == "/api/image":
            number = self._number(query, "index")
            if number is None or not 0 <= number < len(index.keys):
                return self._json({"error": f"index must be an integer in 0..{len(index.keys) - 1}"}, 404)
            self._send(200, index.png(number), "image/png")
        else:
            self._json({"error": f"no such page {url.path!r}"}, 404)

    def do_POST(self):
        if urllib.parse.urlparse(self.path).path != "/api/mark":
            return self._json({"error": f"no such endpoint {self.path!r}"}, 404)
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            key, bad = str(request["key"]), bool(request["bad"])
        except (ValueError, KeyError, TypeError):
            return self._json({"error": 'send JSON {"key": "...", "bad": true|false}'}, 400)
        if key not in self.server.index.position:
            return self._json({"error": f"unknown key {key!r}"}, 404)
        self._json({"key": key, "bad": bad, "marked": self.server.marks.set(key, bad)})


def make_review_server(data_dir: str, *, marks_path: str | None = None, host: str = "127.0.0.1", port: int = 8765,
                       page_size: int = 120) -> http.server.ThreadingHTTPServer:
    """A review server for the prepared dataset data_dir (not yet serving: call serve_forever())."""
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    index = PreparedIndex(data_dir)
    marks = ReviewMarks(marks_path or os.path.join(data_dir, REVIEW_MARKS_FILE), index.keys)
    server = http.server.ThreadingHTTPServer((host, port), ReviewHandler)
    server.index, server.marks, server.page_size = index, marks, page_size
    return server
