"""Running the project's small HTTP servers (explorer, dataset review): in the foreground until
Ctrl-C, or in a background thread (tests, notebooks)."""
import contextlib
import threading
import webbrowser
from typing import Iterator


def serve_until_interrupted(server, message: str, open_browser_at: str = "") -> None:
    """Prints `message`, optionally opens a browser at a URL, serves until Ctrl-C, then closes."""
    print(message, flush=True)
    if open_browser_at:
        threading.Timer(0.5, webbrowser.open, (open_browser_at,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@contextlib.contextmanager
def serving_in_background(server) -> Iterator:
    """Serves from a daemon thread inside the `with` block; shuts down and closes on exit."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
