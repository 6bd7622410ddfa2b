"""One training step's batch split over worker processes, combined into the one-pass result.

Letters: N = images in the batch, P = parts, n_p = images in part p, T = timesteps,
K = classes, W = worker processes (P, or P - 1 when the parent computes a part itself).

``ProcessPool(model, workers)`` starts W processes that live until ``close()`` (or the end of
a ``with`` block). Each holds one BLAS thread and a replica of ``model`` whose parameters are
views on one shared-memory block; the parent's ``model.params`` become views on the same
block, so the optimizer's in-place update is what the workers compute with next, no copy.
``pool.loss(X, y, reg, trace)`` is ``model.loss(X, y, reg, trace)``:

1. the parent copies X and y into a shared input block (X is the normalised, augmented
   batch the parent prepared, so every ``workers`` value trains on the same data and a resume
   continues exactly); the batch is cut into P = min(workers, N) contiguous parts
   (``core.batch_parallel.split_bounds``);
2. each worker gets ``(block, lo, hi, trace)`` through its Pipe, runs ``model.loss`` on its
   part without regularisation and writes its gradients into its own slot of a shared gradient
   block, its sample losses and probabilities into rows lo:hi of shared (N,) / (N, K) buffers
   and its dh_norm (T,) into its row of a shared (W, T) buffer, then replies (loss_p, T,
   bptt_cut); with ``parent_part=True`` (the trainer's default) the parent computes part 0
   itself meanwhile, on one BLAS thread: on an idle machine that beat ``workers`` processes
   and a waiting parent by 4-14% in bench/bench_train.py. The app passes False so that the
   window's process keeps its core;
3. the parent combines the parts exactly as the thread split does
   (``core.batch_parallel.combine_parts``: weighted by n_p / N, regularisation once), so the
   result equals the one-pass loss up to the order of floating-point sums, and the fixed
   split makes a run reproducible for a given ``workers``.

Workers never outlive the pool. They never see SIGINT (Ctrl-C reaches the whole process
group; the parent decides how to stop): it is blocked while a worker starts, so the child
begins with it blocked, before its own imports, as multiprocessing's resource tracker does.
They exit when their Pipe closes (the parent is gone), are daemon processes, and ``close()``
stops, terminates or kills them and unlinks every shared block.
A worker that raises, or dies (killed, out of memory), makes ``loss`` close the pool and raise
:class:`WorkerError` (one line). The processes are started with the 'spawn' method: the app and
the conv stack run threads, and forking a process with threads can deadlock the child.

``BatchLoss(model, workers)`` is what the trainer calls: ``model.loss`` for one worker, else a
pool started on the first call, closed by ``close()``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import signal
import traceback
from contextlib import contextmanager
from multiprocessing import connection, shared_memory
from pathlib import Path

import numpy as np

from core.batch_parallel import combine_parts, split_bounds
from core.errors import RnnscopeError
from core.fileio import pid_after, remove_orphans
from core.threads import one_blas_thread
from core.trace import Trace

START_METHOD = "spawn"
SEGMENT_PREFIX = "rnnscope_"   # /dev/shm names: rnnscope_<parent pid>_<random>
SHM_FOLDER = Path("/dev/shm")   # where POSIX shared memory shows up as files (Linux)


def worker_processes(pid: int | None = None) -> list[int]:
    """The pids of the spawned worker processes (multiprocessing children) of process ``pid``
    (default: this one), sorted; [] where /proc cannot tell (not Linux)."""
    out = []
    for task in Path(f"/proc/{os.getpid() if pid is None else pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for c in children:
            try:
                if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes():
                    out.append(int(c))
            except OSError:
                continue
    return sorted(out)


def remove_dead_segments() -> list[Path]:
    """Unlink the segments of runs whose parent was killed before it could (SIGKILL, a crash
    of the machine's OOM killer): their memory would stay taken until a reboot. A segment of a
    live run is never touched, however old (a training run may last for hours)."""
    if not SHM_FOLDER.is_dir():
        return []
    return remove_orphans(SHM_FOLDER, lambda name: pid_after(SEGMENT_PREFIX, name, "_"),
                          max_age_s=float("inf"))
ALIGN = 64                     # bytes; every array in a block starts on a cache line
PARENT_PART = True            # BatchLoss default: whether the parent computes one part itself
STOP_SECONDS = 2.0             # how long close() waits for a worker before terminating it
_unclosable: list = []         # segments still exported by a caller's views (see _Block.release)


class WorkerError(RnnscopeError):
    """A training worker process raised or died; the pool is closed. ``worker_traceback``
    holds the worker's traceback text when it raised."""

    def __init__(self, message: str, worker_traceback: str = ""):
        super().__init__(message)
        self.worker_traceback = worker_traceback


class _Block:
    """Named arrays in one shared-memory segment.

    fields: tuple of (name, shape tuple, dtype str). ``spec`` = (segment name, fields) is
    what another process needs to attach (``_Block(spec=...)``).
    """

    def __init__(self, fields=None, spec=None):
        if spec is None:
            offsets, size = self._layout(fields)
            name = f"{SEGMENT_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"
            try:
                self.shm = shared_memory.SharedMemory(name=name, create=True, size=max(size, 1))
            except OSError as exc:
                raise WorkerError(f"cannot create {size / 2**20:.1f} MiB of shared memory for "
                                  f"the training worker processes ({exc.strerror or exc}); "
                                  "train with workers = 1") from None
            self.owner = True
        else:
            name, fields = spec
            offsets, _ = self._layout(fields)
            self.shm = shared_memory.SharedMemory(name=name)
            self.owner = False
        self.fields = tuple(fields)
        self.spec = (self.shm.name, self.fields)
        self.arrays = {f: np.ndarray(shape, dtype=np.dtype(dt), buffer=self.shm.buf,
                                     offset=offsets[f])
                       for f, shape, dt in self.fields}

    @staticmethod
    def _layout(fields):
        offsets, pos = {}, 0
        for f, shape, dt in fields:
            offsets[f] = pos
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
            pos += -(-nbytes // ALIGN) * ALIGN
        return offsets, pos

    def release(self) -> None:
        """Drop the views, unmap, and (owner) unlink the segment's name."""
        self.arrays = {}
        try:
            self.shm.close()
        except BufferError:
            # a caller still holds a view: keep the mapping alive for it (it is freed with the
            # process); the name is unlinked below all the same, so nothing stays in /dev/shm
            _unclosable.append(self.shm)
        if self.owner:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass


@contextmanager
def _sigint_blocked():
    """Block SIGINT in this thread; a child started meanwhile inherits the blocked mask."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _fields_of(arrays: dict, prefix: str = ""):
    return tuple((prefix + k, tuple(v.shape), v.dtype.str) for k, v in arrays.items())


def _worker_main(index: int, conn, model_config: dict, params_spec, grads_spec) -> None:
    """A worker process: attach the shared blocks, then serve steps until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from threadpoolctl import threadpool_limits

    from core.models import build_model

    threadpool_limits(limits=1, user_api="blas")
    params = _Block(spec=params_spec)
    grads = _Block(spec=grads_spec)
    batch = None
    try:
        model = build_model(model_config)
        for k in model.params:
            model.params[k] = params.arrays[k]
        my_grads = {k: grads.arrays[f"{index}/{k}"] for k in model.params}
        conn.send(("ready", os.getpid()))
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                break
            if msg is None:
                break
            batch_spec, lo, hi, trace = msg
            try:
                if batch is None or batch.spec[0] != batch_spec[0]:
                    if batch is not None:
                        batch.release()
                    batch = _Block(spec=batch_spec)
                b = batch.arrays
                out = model.loss(b["X"][lo:hi], b["y"][lo:hi], 0.0, trace)
                for k, g in out[1].items():
                    my_grads[k][...] = g
                T, cut = 0, None
                if trace:
                    tr = out[2]
                    b["sample_losses"][lo:hi] = tr.sample_losses
                    b["probs"][lo:hi] = tr.probs
                    T, cut = len(tr.dh_norm), tr.bptt_cut
                    b["dh_norm"][index, :T] = tr.dh_norm
                conn.send(("ok", float(out[0]), T, cut))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                           traceback.format_exc()))
    except (BrokenPipeError, EOFError):
        pass
    finally:
        for block in (batch, grads, params):
            if block is not None:
                block.release()
        conn.close()


class ProcessPool:
    """``workers``-way data-parallel ``model.loss`` on worker processes (see module doc).

    parent_part: the parent computes part 0 itself (workers - 1 processes), else it only
    prepares and combines (``workers`` processes). Use ``with ProcessPool(...) as pool:`` or
    ``start()`` / ``close()``; while started, ``model.params`` are views on shared memory.
    """

    def __init__(self, model, workers: int, parent_part: bool = True):
        self.model = model
        self.workers = max(1, int(workers))
        self.parent_part = bool(parent_part)
        self.n_processes = self.workers - 1 if self.parent_part else self.workers
        self._procs: list = []
        self._conns: list = []
        self._params: _Block | None = None
        self._grads: _Block | None = None
        self._batch: _Block | None = None
        self._grad_views: list[dict] = []
        self.started = False

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> ProcessPool:
        """Move the parameters into shared memory and start the workers (waits until each
        has attached). Raises WorkerError (pool closed) if a worker fails to start."""
        if self.started:
            return self
        self.started = True
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        remove_dead_segments()
        model = self.model
        self._params = _Block(_fields_of(model.params))
        for k, view in self._params.arrays.items():
            view[...] = model.params[k]
            model.params[k] = view
        grad_fields = sum((_fields_of(model.params, f"{w}/") for w in range(self.n_processes)),
                          ())
        self._grads = _Block(grad_fields)
        self._grad_views = [{k: self._grads.arrays[f"{w}/{k}"] for k in model.params}
                            for w in range(self.n_processes)]
        ctx = mp.get_context(START_METHOD)
        for w in range(self.n_processes):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, name=f"rnnscope-worker-{w + 1}",
                               args=(w, child_end, model.config, self._params.spec,
                                     self._grads.spec), daemon=True)
            with _sigint_blocked():
                proc.start()
            child_end.close()
            self._procs.append(proc)
            self._conns.append(parent_end)
        self._collect(list(range(self.n_processes)), expect="ready")

    def close(self) -> None:
        """Stop every worker (terminate / kill the ones that do not stop), give the model
        private copies of its parameters and unlink every shared block. Idempotent."""
        for conn in self._conns:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            proc.join(STOP_SECONDS)
            if proc.exitcode is None:
                proc.terminate()
                proc.join(STOP_SECONDS)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
        if self._params is not None:
            for k, view in self._params.arrays.items():
                if self.model.params.get(k) is view:
                    self.model.params[k] = view.copy()
        self._grad_views = []
        for block in (self._batch, self._grads, self._params):
            if block is not None:
                block.release()
        self._batch = self._grads = self._params = None
        self.started = False

    def __enter__(self) -> ProcessPool:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (empty when not started)."""
        return [p.pid for p in self._procs]

    @property
    def segments(self) -> list[str]:
        """The names of the shared-memory blocks in use (as under /dev/shm)."""
        return [b.shm.name.lstrip("/") for b in (self._params, self._grads, self._batch)
                if b is not None]

    # -- one step -------------------------------------------------------------------------------
    def loss(self, X, y, reg: float = 0.0, trace=False):
        """``model.loss(X, y, reg, trace)`` with the batch split over the pool.

        X: model input with N images first; y int (N,); trace False or 'norms' (True, a full
        trace for the explainer, runs in one pass here). Returns (loss, grads) or
        (loss, grads, Trace); the arrays are new. Raises WorkerError (pool closed).
        """
        if not self.started:
            self.start()
        y = np.asarray(y)
        N = len(y)
        parts = max(1, min(self.workers, N))
        if trace is True or parts == 1:
            return self.model.loss(X, y, reg, trace)
        self._adopt_params()
        X = np.asarray(X)
        batch = self._batch_for(X, N)
        b = batch.arrays
        b["X"][:N] = X
        b["y"][:N] = y
        bounds = split_bounds(N, parts)
        first = 1 if self.parent_part else 0
        remote = list(range(first, parts))          # part p runs on worker p - first
        try:
            with one_blas_thread():
                for p in remote:
                    self._send(p - first, (batch.spec, int(bounds[p]), int(bounds[p + 1]),
                                           trace))
                local = (self.model.loss(X[:bounds[1]], y[:bounds[1]], 0.0, trace)
                         if self.parent_part else None)
                replies = self._collect([p - first for p in remote], expect="ok")
        except BaseException:
            self.close()  # workers may be mid-step: a half-done step cannot be continued
            raise
        results = [] if local is None else [local]
        for p, (_, loss_p, T, cut) in zip(remote, replies):
            w = p - first
            lo, hi = bounds[p], bounds[p + 1]
            grads_p = self._grad_views[w]
            if trace:
                tr = Trace(sample_losses=b["sample_losses"][lo:hi], probs=b["probs"][lo:hi],
                           dh_norm=b["dh_norm"][w, :T], bptt_cut=cut)
                results.append((loss_p, grads_p, tr))
            else:
                results.append((loss_p, grads_p))
        return combine_parts(self.model, bounds, results, reg, trace)

    def _adopt_params(self) -> None:
        """Re-bind any parameter the caller replaced (rather than updated in place) to the
        shared block, so the workers compute with it too."""
        params = self.model.params
        for k, view in self._params.arrays.items():
            if params[k] is not view:
                view[...] = params[k]
                params[k] = view

    def _batch_for(self, X: np.ndarray, N: int) -> _Block:
        """The shared input/output block, (re)allocated when this batch does not fit."""
        K = self.model.params["b_q"].shape[0]
        dt = self.model.dtype.str
        # the timesteps: a row-RNN reads X.shape[1] rows (any number); a CNN+RNN model.T (8
        # map rows or 64 map positions, the latter more than X's 32 image rows)
        T_cap = max(X.shape[1], int(getattr(self.model, "T", 0)))
        b = self._batch
        if (b is None or b.arrays["X"].shape[0] < N or b.arrays["X"].shape[1:] != X.shape[1:]
                or b.arrays["X"].dtype != X.dtype):
            fields = (("X", (N,) + X.shape[1:], X.dtype.str), ("y", (N,), "<i8"),
                      ("sample_losses", (N,), dt), ("probs", (N, K), dt),
                      ("dh_norm", (max(self.n_processes, 1), T_cap), dt))
            new = _Block(fields)
            if b is not None:
                b.release()  # the workers attach to the new one on their next step
            self._batch = b = new
        return b

    # -- signalling -------------------------------------------------------------------------------
    def _send(self, w: int, msg) -> None:
        try:
            self._conns[w].send(msg)
        except (OSError, ValueError):
            raise self._died(w) from None

    def _collect(self, ws: list[int], expect: str) -> list:
        """The next reply of each worker in ``ws`` (in that order), waiting on all of them at
        once; WorkerError as soon as one raised or died."""
        replies = {}
        pending = {self._conns[w]: w for w in ws}
        while pending:
            sentinels = {self._procs[w].sentinel: w for w in pending.values()}
            ready = connection.wait(list(pending) + list(sentinels))
            for obj in ready:
                if obj in pending:
                    w = pending.pop(obj)
                    replies[w] = self._read(w, expect)
            for obj in ready:
                w = sentinels.get(obj)
                if w is not None and w not in replies and not self._conns[w].poll():
                    raise self._died(w)  # exited without a reply
        return [replies[w] for w in ws]

    def _read(self, w: int, expect: str):
        proc = self._procs[w]
        try:
            msg = self._conns[w].recv()
        except (EOFError, OSError):
            raise self._died(w) from None
        if msg[0] == "error":
            raise WorkerError(f"training worker process {w + 1} (pid {proc.pid}) failed: "
                              f"{msg[1]}", worker_traceback=msg[2])
        if msg[0] != expect:
            raise WorkerError(f"training worker process {w + 1} sent {msg[0]!r}, expected "
                              f"{expect!r}")
        return msg

    def _died(self, w: int) -> WorkerError:
        proc = self._procs[w]
        proc.join(STOP_SECONDS)
        code = proc.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit code {code}"
        return WorkerError(f"training worker process {w + 1} (pid {proc.pid}) stopped "
                           f"unexpectedly ({how}); training stopped, the last checkpoint is "
                           "kept")


class BatchLoss:
    """The trainer's step loss: ``model.loss`` for ``workers`` = 1, else a ProcessPool
    started on the first call. ``close()`` ends the pool (the next call starts a new one)."""

    def __init__(self, model, workers: int = 1, parent_part: bool | None = None):
        self.model = model
        self.workers = max(1, int(workers))
        self.parent_part = PARENT_PART if parent_part is None else bool(parent_part)
        self.pool: ProcessPool | None = None

    def __call__(self, X, y, reg: float = 0.0, trace=False):
        if self.workers == 1:
            return self.model.loss(X, y, reg, trace)
        if self.pool is None:
            self.pool = ProcessPool(self.model, self.workers, parent_part=self.parent_part)
        try:
            return self.pool.loss(X, y, reg, trace)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.close()
