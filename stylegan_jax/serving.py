"""Running the project's small HTTP servers (explorer, dataset review): in the foreground until
Ctrl-C, or in a background thread (tests, notebooks); and a queue of long jobs that run off the
request threads while clients poll their progress."""
import collections
import contextlib
import dataclasses
import queue
import threading
import time
import uuid
import webbrowser
from typing import Any, Callable, Iterator, Optional


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


class QueueFull(Exception):
    """Too many jobs are waiting (JobQueue.max_waiting)."""


class Cancelled(Exception):
    """Raised inside a job's work by its progress callback once the job is cancelled."""


@dataclasses.dataclass
class Job:
    """One piece of work: `run(progress)` returns the result; progress(done, total) reports, and
    raises Cancelled once the job is cancelled (so work stops at its next item)."""
    id: str
    kind: str
    run: Callable[[Callable[[int, int], None]], Any]
    status: str = "queued"  # queued -> running -> done | failed | cancelled
    done: int = 0
    total: int = 1
    result: Any = None
    error: Optional[Exception] = None
    finished_at: float = 0.0
    cancel_requested: bool = False

    def describe(self) -> dict:
        """The job's state as JSON-ready values (without the result)."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "done": self.done,
                "total": self.total, "progress": min(1.0, self.done / max(self.total, 1)),
                "error": None if self.error is None else " ".join(str(self.error).split())}


class JobQueue:
    """Runs jobs one at a time on a worker thread, in order; keeps the last `keep` finished ones.

    submit() raises QueueFull when max_waiting jobs are already queued or running. A job's
    exception is kept as its error (the caller decides how to report it)."""

    def __init__(self, max_waiting: int = 4, keep: int = 8):
        self.max_waiting, self.keep = max_waiting, keep
        self._jobs: "collections.OrderedDict[str, Job]" = collections.OrderedDict()
        self._queue: "queue.Queue[Optional[Job]]" = queue.Queue()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="jobs", daemon=True)
        self._worker.start()

    def submit(self, kind: str, run) -> Job:
        """Queues run(progress) and returns its Job."""
        with self._lock:
            waiting = sum(j.status in ("queued", "running") and not j.cancel_requested
                          for j in self._jobs.values())
            if waiting >= self.max_waiting:
                raise QueueFull(f"{waiting} jobs are already waiting: wait for one to finish")
            job = Job(uuid.uuid4().hex, kind, run)
            self._jobs[job.id] = job
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Optional[Job]:
        """The job with this id, or None (unknown or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Optional[Job]:
        """Cancels a job: a queued one at once, a running one at its next progress report (work
        that never reports runs to its end, then is cancelled). A finished job is left as it is.
        Returns the job, or None (unknown or forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status == "queued":
                job.status, job.finished_at = "cancelled", time.time()
            elif job.status == "running":
                job.cancel_requested = True
            return job

    def close(self) -> None:
        """Stops the worker after the job it is running (queued ones are dropped)."""
        self._queue.put(None)

    def _work(self):
        while (job := self._queue.get()) is not None:
            with self._lock:
                if job.status == "cancelled":  # while it waited
                    continue
                job.status = "running"

            def progress(done, total, job=job):
                job.done, job.total = int(done), int(total)
                if job.cancel_requested:
                    raise Cancelled(f"job {job.id} was cancelled")
            try:
                result = job.run(progress)
                with self._lock:
                    if job.cancel_requested:
                        job.status = "cancelled"
                    else:
                        job.result, job.done, job.status = result, job.total, "done"
            except Cancelled:
                job.status = "cancelled"
            except Exception as e:  # pylint: disable=broad-except  (reported by the job's status)
                job.error, job.status = e, "failed"
            job.finished_at = time.time()
            self._forget_old()

    def _forget_old(self):
        with self._lock:
            finished = [j for j in self._jobs.values()
                        if j.status in ("done", "failed", "cancelled")]
            for job in sorted(finished, key=lambda j: j.finished_at)[:-self.keep or None]:
                del self._jobs[job.id]
