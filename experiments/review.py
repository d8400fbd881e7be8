"""Review a prepared dataset in the browser: click bad images to exclude them from training.

  python -m experiments.review --data=data/danbooru_faces [--port=8765] [--marks=FILE]

Open the printed address; the marks are saved after every click to --marks (default
<data>/review_exclude.txt), a key list the next training run skips when given as its exclude file
(make_pipeline(..., exclude=FILE)). Nothing in the dataset is deleted. Ctrl-C stops the server.
"""
from __future__ import annotations

import argparse

from stylegan_jax.prep.review import make_review_server
from stylegan_jax.prep.runner import run_command
from stylegan_jax.serving import serve_until_interrupted


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="prepared dataset folder (written by experiments.prepare_*)")
    parser.add_argument("--marks", default=None,
                        help="key list of images marked bad (default <data>/review_exclude.txt)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: reachable from others)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--page_size", type=int, default=120, help="images per page")
    args = parser.parse_args(argv)
    server = make_review_server(args.data, marks_path=args.marks, host=args.host, port=args.port,
                                page_size=args.page_size)
    host, port = server.server_address[:2]
    serve_until_interrupted(server, f"reviewing {len(server.index.keys)} images of {args.data}: open "
                                    f"http://{host}:{port}/ (marks go to {server.marks.path}; "
                                    "Ctrl-C to stop)")


if __name__ == "__main__":
    run_command(main)
