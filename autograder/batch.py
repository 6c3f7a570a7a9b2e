"""Running a batch: discovery, jobs keyed by content, a resumable result store, grading processes or Dask.

``python -m autograder grade --assignment A [--jobs N] [--gradebook DIR] PATH...`` goes through
``run``:

1. ``discover`` expands the paths (notebooks, ``.py`` files, folders, nbgrader's
   ``submitted/<student>/<assignment>/`` tree) into submissions, each with a student id.
2. ``make_jobs`` reads every file once, in the grader: the job carries the file's bytes, so
   nothing a submission does later can change what is graded, and a remote (Dask) worker needs
   no shared filesystem. A job's key is the SHA-256 of the bytes, the assignment, the options and
   the grader's fingerprint (its code, the assignment's checks and data, the reference module).
3. ``ResultStore`` keeps one JSON file per finished job (``<store>/<key[:2]>/<key>.json``,
   written atomically: temporary file, fsync, rename). A batch that is interrupted, or whose
   worker dies, is resumed by running the same command again: finished jobs are read back, the
   others are graded. Two students who hand in the same bytes are graded once.
4. Each job is graded in a grading process of its own (``autograder.supervisor``: forked from a
   zygote that has the grader loaded, checks on its main thread, a memory limit, one wall-clock
   budget), at most ``jobs`` at once, locally or inside a Dask task (``grade_job``). Finished
   checks are streamed as they finish, so a grading process that dies (budget used up, the
   host's OOM killer, a crash) costs only the checks of its own submission that had not
   finished; nothing is charged to the others.
5. ``results_of`` turns the records into results; the CLI hands them to
   ``reporting.pages.write_gradebook`` (``gradebook.csv``, ``gradebook.json``, a feedback page per
   student, ``index.html``, the class report). This module writes no report.

The same submission gets the same grade on every run and machine: checks draw their inputs from
generators seeded by the check's identity, and the sandbox child seeds numpy's and Python's
global generators before every call and makes unseeded generators repeatable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, blas

SUBMISSION_SUFFIXES = (".ipynb", ".py")
STORE_FOLDER = ".results"


# ------------------------------------------------------------------------------------ discovery
@dataclass(frozen=True)
class Entry:
    path: Path
    student: str


def nbgrader_student(path: Path, assignment_id: str) -> str | None:
    """The student id of a file inside ``.../submitted/<student>/<assignment>/``, else None."""
    parts = path.resolve().parts if path.exists() else Path(os.path.abspath(path)).parts
    for i in range(len(parts) - 3, -1, -1):
        if parts[i] in ("submitted", "autograded") and parts[i + 2] == assignment_id:
            return parts[i + 1]
    return None


def discover(paths: list[str | Path], assignment_id: str) -> list[Entry]:
    """The submissions below ``paths``, in a stable order, each with a student id.

    Inside an nbgrader tree the student id is the folder name, and when the student's folder
    holds ``<assignment>.ipynb`` only that notebook is graded (like nbgrader). Elsewhere the id
    is the file's stem, made unique with its folder when two files share a stem.
    """
    from .grading import collect_paths

    files = collect_paths(paths)
    entries: list[tuple[Path, str | None]] = []
    for path in files:
        student = nbgrader_student(path, assignment_id)
        if student is not None and path.name != f"{assignment_id}.ipynb" \
                and (path.parent / f"{assignment_id}.ipynb").is_file():
            continue  # a scratch file next to the assignment's notebook
        entries.append((path, student))
    ids: list[str] = []
    for path, student in entries:
        if student is not None:
            nbgrader_files = [p for p, s in entries if s == student]
            ids.append(student if len(nbgrader_files) == 1 else f"{student}/{path.stem}")
        else:
            ids.append(path.stem)
    clashes = {i for i, (_, student) in enumerate(entries) if student is None and ids.count(ids[i]) > 1}
    for i in clashes:
        ids[i] = f"{entries[i][0].parent.name}/{entries[i][0].stem}"
    clashes = {i for i in range(len(ids)) if ids.count(ids[i]) > 1}
    for i in clashes:
        ids[i] = str(entries[i][0])
    return [Entry(path, student_id) for (path, _), student_id in zip(entries, ids)]


# ------------------------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class Job:
    key: str
    student: str
    label: str                      # the contract's "submission": the path as given
    suffix: str
    data: bytes | None              # None: the file could not be read (see ``unreadable``)
    assignment: str
    only: tuple | None = None
    figures: bool = False
    hidden: tuple = ()
    limits: dict = field(default_factory=dict)
    unreadable: str | None = None

    def request(self):
        """What a grading process needs to grade this job (``supervisor.Request``)."""
        from .supervisor import Request
        return Request(self.assignment, self.label, data=self.data, suffix=self.suffix,
                       unreadable=self.unreadable if self.data is None else None, only=self.only,
                       figures=self.figures, hidden=self.hidden, limits=dict(self.limits))


def fingerprint(assignment_id: str) -> str:
    """A hash of everything that decides a grade: the grader's code (every assignment's checks),
    the data and the reference modules. A stored result is reused only under the same fingerprint
    (and its job key names the assignment)."""
    return _grader_fingerprint()


@functools.cache
def _grader_fingerprint() -> str:
    # One for every assignment: it hashes all of the grader, so it is computed once per process.
    digest = hashlib.sha256(f"autograder {__version__}\n".encode())
    for name, path in graded_files():
        digest.update(f"{name}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def graded_files() -> list[tuple[str, Path]]:
    """(name, path) of every file the fingerprint hashes, sorted; names are relative to their root
    (``autograder/...``, ``datasets/...``, ``solutions/...``): the same grader in another checkout
    has the same fingerprint."""
    # Everything, not a list of folders: an assignment may reuse another's checks, data or
    # reference (hard_em uses prankster's), and a missed folder would keep a stale grade.
    package = Path(__file__).resolve().parent
    shipped = (".py", ".npz", ".json", ".csv", ".txt")   # (never caches written at run time)
    files = [("autograder", package, p) for p in package.rglob("*") if p.suffix in shipped]
    try:
        from . import datasets
        data_dir = Path(datasets.__file__).resolve().parent
        if data_dir != package / "datasets":
            files += [("datasets", data_dir, p) for p in data_dir.rglob("*") if p.suffix in shipped]
    except ImportError:  # pragma: no cover
        pass
    from .engine.reference import course_root
    course = course_root()   # (the references' files, read without importing them)
    if course is not None:
        files += [("solutions", course / "solutions", p) for p in (course / "solutions").rglob("*.py")]
    return sorted({(f"{label}/{p.relative_to(root).as_posix()}", p) for label, root, p in files
                   if p.is_file() and "__pycache__" not in p.parts})


def make_jobs(entries: list[Entry], assignment_id: str, *, only=None, figures: bool = False,
              hidden=(), limits: dict | None = None) -> list[Job]:
    from .loading.reading import UnreadableSubmission, read_submission_bytes
    grader = fingerprint(assignment_id)
    options = json.dumps({"only": sorted(only) if only else None, "figures": bool(figures),
                          "limits": limits or {}}, sort_keys=True)
    jobs = []
    for entry in entries:
        data, unreadable = None, None
        try:   # (never a symbolic link, never more than the size cap: see read_submission_bytes)
            if entry.path.is_file() or entry.path.is_symlink():
                data = read_submission_bytes(entry.path)
            else:
                unreadable = "this is not a regular file" if entry.path.exists() else "no such file"
        except UnreadableSubmission as exc:
            unreadable = str(exc)
        content = hashlib.sha256(data if data is not None else f"unreadable:{entry.path}".encode()).hexdigest()
        key = hashlib.sha256(f"{content}\n{assignment_id}\n{entry.path.suffix}\n{options}\n{grader}".encode()
                             ).hexdigest()[:40]
        jobs.append(Job(key, entry.student, str(entry.path), entry.path.suffix, data, assignment_id,
                        tuple(only) if only else None, bool(figures), tuple(str(h) for h in hidden),
                        dict(limits or {}), unreadable))
    return jobs


def grade_job(job: Job, *, should_stop=None, idle_seconds: float | None = None) -> dict:
    """Grade one job in a grading process of its own (a Dask task calls this on its worker)."""
    from .supervisor import grade_one
    blas.default_to_one_thread()
    record = grade_one(job.request(), should_stop=should_stop, idle_seconds=idle_seconds)
    return _keyed(job, record)


def _keyed(job: Job, record: dict) -> dict:
    return dict(record, key=job.key, grader=fingerprint(job.assignment))


# ------------------------------------------------------------------------------------ the store
class ResultStore:
    """One JSON file per finished job, written atomically; safe to read while a batch runs."""

    def __init__(self, folder: str | Path, reuse: bool = True) -> None:
        self.folder = Path(folder)
        self.reuse = reuse    # False: grade everything again (results are still written)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if not self.reuse:
            return None
        try:
            record = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key or not isinstance(record.get("result"), dict):
            return None
        return record

    def put(self, record: dict) -> None:
        """Write one record; a stopping signal waits until it is complete (never half a file)."""
        blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        main = threading.current_thread() is threading.main_thread()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked) if main else None
        try:
            self._put(record)
        finally:
            if previous is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _put(self, record: dict) -> None:
        target = self.path(record["key"])
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


# ------------------------------------------------------------------------------------ progress
class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool, stream=None) -> None:
        self.total, self.enabled = total, enabled and total > 0
        self.stream = stream or sys.stderr
        self.done = 0
        self.reused = 0
        self.started = time.monotonic()

    def advance(self, label: str = "", reused: bool = False) -> None:
        self.done += 1
        self.reused += reused
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.started
        fresh = self.done - self.reused
        rate = fresh / elapsed if elapsed > 0 and fresh else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        text = (f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                f"  {rate * 60:.0f}/min  ETA {int(eta // 60)}m{int(eta % 60):02d}s  {label[-30:]:<30}")
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False


# ------------------------------------------------------------------------------------ running
def run(jobs: list[Job], *, workers: int = 1, store: ResultStore | None = None, scheduler: str | None = None,
        progress: Progress | None = None, log=None) -> list[dict]:
    """Grade ``jobs`` (reusing stored results) and return one record per job, in job order."""
    progress = progress or Progress(len(jobs), False)
    log = log or (lambda text: None)
    records: dict[str, dict] = {}
    todo: dict[str, Job] = {}
    for job in jobs:
        record = store.get(job.key) if store else None
        if record is not None:
            records[job.key] = record
        elif job.key not in todo:
            todo[job.key] = job
    reused = len(jobs) - sum(1 for job in jobs if job.key in todo)
    for job in jobs:
        if job.key in records:
            progress.advance(job.label, reused=True)
    if reused:
        log(f"{reused} of {len(jobs)} submission(s) already graded (results reused from {store.folder})")
    waiting = {key: [j for j in jobs if j.key == key] for key in todo}

    def finished(job: Job, record: dict) -> None:
        records[job.key] = record
        if store is not None and not record.get("internal_error") and not record.get("worker_error"):
            store.put(record)
        for _ in waiting[job.key]:
            progress.advance(job.label)

    pending = list(todo.values())
    if scheduler:
        _run_dask(pending, scheduler, finished)
    elif pending:
        _run_local(pending, workers, finished, log)
    return [records[job.key] for job in jobs]


def _run_local(jobs: list[Job], workers: int, finished, log) -> None:
    """Up to ``workers`` grading processes at once (see ``autograder.supervisor``)."""
    from .supervisor import Supervisor
    preload = sorted({job.assignment for job in jobs}) + (["figures"] if any(j.figures for j in jobs) else [])
    with Supervisor(preload=preload, log=log) as supervisor:
        supervisor.run([job.request() for job in jobs], jobs=workers,
                       on_done=lambda index, record: finished(jobs[index], _keyed(jobs[index], record)))


def _worker_error(job: Job, message: str) -> dict:
    from .engine import SubmissionResult
    payload = SubmissionResult(job.label, job.assignment, error=message).to_dict()
    payload["notes"] = []
    return {"key": job.key, "result": payload, "figures": [], "worker_error": True, "seconds": 0.0}


def _dask_cancelled() -> bool:
    """True when this Dask task is no longer wanted (its client cancelled it or went away)."""
    try:
        from distributed import get_worker
        from distributed.worker import thread_state
        task = get_worker().state.tasks.get(thread_state.key)
    except Exception:  # noqa: BLE001 - not in a Dask task, or another Dask: never stop for that
        return False
    return task is None or task.state in ("cancelled", "released", "forgotten")


def _grade_on_dask(job: Job) -> dict:
    # The worker's zygote ends after 10 idle seconds: nothing of a finished run stays on the cluster.
    return grade_job(job, should_stop=_dask_cancelled, idle_seconds=10)


def _run_dask(jobs: list[Job], address: str, finished) -> None:
    from distributed import Client, as_completed

    with Client(address) as client:
        futures = {}
        for job in jobs:
            # One retry: a lost worker is not the submission's doing (its grading process has its own).
            futures[client.submit(_grade_on_dask, job, key=f"grade-{job.key}", pure=False, retries=1)] = job
        try:
            for future in as_completed(list(futures)):
                job = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after the retries
                    record = _worker_error(job, f"the Dask cluster could not grade this submission: "
                                                f"{type(exc).__name__}: {exc}")
                else:
                    if record.get("grader") != fingerprint(job.assignment):
                        record = _worker_error(job, "the Dask worker runs a different version of the grader, "
                                                    "the checks or the reference than this machine")
                finished(job, record)
        except BaseException:
            # Stopped: the workers' tasks see that they are cancelled and kill their grading processes.
            client.cancel(list(futures), force=True)
            raise


# ------------------------------------------------------------------------------------ results
def results_of(jobs: list[Job], records: list[dict]):
    """SubmissionResults (labelled with each job's path) from records."""
    from .engine import SubmissionResult
    out = []
    for job, record in zip(jobs, records):
        data = dict(record["result"], submission=job.label)
        out.append(SubmissionResult.from_dict(data))
    return out
