"""Review a prepared dataset in the browser: click bad images to exclude them from training.

  python -m experiments.review --data=data/danbooru_faces [--port=8765] [--marks=FILE]

Open the printed address; the marks are saved after every click to --marks (default
<data>/review_exclude.txt), a key list that training on <data> leaves out (marks written
elsewhere: train with --config.data.exclude=FILE). Nothing in the dataset is deleted. Ctrl-C
stops the server.
"""
from __future__ import annotations

from absl import app, flags

from stylegan_jax.data.sources import check_prepared_dir
from stylegan_jax.prep.review import make_review_server
from stylegan_jax.serving import serve_until_interrupted
from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command's flags (when it runs, as the other prepare_* tools do)."""
    flags.DEFINE_string("data", None, "prepared dataset folder (written by experiments.prepare_*)", required=True)
    flags.DEFINE_string("marks", None, "key list of images marked bad (default <data>/review_exclude.txt)")
    flags.DEFINE_string("host", "127.0.0.1", "address to listen on (0.0.0.0: reachable from others)")
    flags.DEFINE_integer("port", 8765, "port to listen on (0: any free port)")
    flags.DEFINE_integer("page_size", 120, "images per page")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        check_prepared_dir(FLAGS.data)
        server = make_review_server(FLAGS.data, marks_path=FLAGS.marks, host=FLAGS.host, port=FLAGS.port,
                                    page_size=FLAGS.page_size)
        host, port = server.server_address[:2]
        serve_until_interrupted(server, f"reviewing {len(server.index.keys)} images of {FLAGS.data}: open "
                                        f"http://{host}:{port}/ (marks go to {server.marks.path}; "
                                        "Ctrl-C to stop)")
    except (ValueError, OSError, ImportError) as e:  # bad input, a missing file, a port in use
        exit_with_error(e)


if __name__ == "__main__":
    define_flags()
    app.run(main)
