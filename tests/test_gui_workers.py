"""The workers' shared base (app/worker_thread.Worker): a user mistake fails with its own line,
a bug with "internal error while ..." and its traceback, and ``done`` always follows."""

import pytest

pytest.importorskip("PySide6")

from core.errors import RnnscopeError  # noqa: E402


def _signals(worker) -> list:
    got = []
    worker.failed.connect(lambda message: got.append(("failed", message)))
    worker.done.connect(lambda: got.append(("done",)))
    return got


def _worker(action):
    from app.worker_thread import Worker

    class Job(Worker):
        doing = "testing"

        def work(self):
            action()

    return Job()


def test_a_user_mistake_fails_with_its_own_line(qapp, capsys):
    def mistake():
        raise RnnscopeError("no such file: x.npz")

    w = _worker(mistake)
    got = _signals(w)
    w.run()
    assert got == [("failed", "no such file: x.npz"), ("done",)]
    assert "Traceback" not in capsys.readouterr().err


def test_a_bug_fails_as_internal_error_with_its_traceback(qapp, capsys):
    def bug():
        raise ValueError("bad shape")

    w = _worker(bug)
    got = _signals(w)
    w.run()
    assert got == [("failed", "internal error while testing: ValueError('bad shape')"),
                   ("done",)]
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: bad shape" in err


def test_success_emits_done_only_and_done_ends_the_thread(qtbot):
    from app.worker_thread import start_worker

    ran = []
    w = _worker(lambda: ran.append(True))
    got = _signals(w)
    with qtbot.waitSignal(w.done, timeout=10000):
        thread = start_worker(w)
    qtbot.waitUntil(thread.isFinished, timeout=10000)    # done -> quit() on the GUI thread
    assert ran == [True] and got == [("done",)]


def test_the_five_workers_share_the_base():
    from app.download_worker import DownloadWorker
    from app.load_worker import LoadDataWorker
    from app.report_worker import ReportWorker
    from app.trace_worker import TraceWorker
    from app.train_worker import TrainWorker
    from app.worker_thread import Worker

    for cls in (DownloadWorker, LoadDataWorker, ReportWorker, TraceWorker, TrainWorker):
        assert issubclass(cls, Worker), cls
        assert "run" not in vars(cls) or cls is TraceWorker, cls   # the base's run()
        assert "errors_reported" not in vars(cls), cls


def test_load_worker_explains_a_wrong_path(qapp, tmp_path):
    from app.load_worker import LoadDataWorker

    w = LoadDataWorker(str(tmp_path / "missing"))
    got = _signals(w)
    w.run()
    assert [g[0] for g in got] == ["failed", "done"]
    assert "internal error" not in got[0][1] and "\n" not in got[0][1]


def test_trace_worker_reports_a_bad_job_and_keeps_serving(qapp, capsys):
    from app.trace_worker import TraceWorker

    w = TraceWorker()
    got = _signals(w)
    w.request_trace({"snapshot": None})      # a job without its fields: a bug, reported
    w._process()
    assert got and got[0][0] == "failed" and got[0][1].startswith("internal error while tracing")
    assert ("done",) not in got                # a long-lived worker: its thread keeps running
    assert not hasattr(w, "busy")
    capsys.readouterr()
