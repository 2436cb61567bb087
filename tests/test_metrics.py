"""METRICS without a server: the labels, the folder's rule and upkeep, the dead workers' fold.

Live servers under each launcher are tests/test_metrics_live.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app, metrics_files
from settings import load_settings
from settings.errors import ConfigError
from tests.support import ROOT, clean_env

DURATION = "http_server_request_duration_seconds"


def counts(text: str) -> dict[tuple[str, str, str], float]:
    """(method, route, status) -> the histogram's count, from a scrape's text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"{DURATION}_count":
                labels = s.labels
                key = (labels["http_request_method"], labels["http_route"])
                found[(*key, labels["http_response_status_code"])] = s.value
    return found


def test_off_metrics_is_the_apps_404_and_prometheus_client_is_never_imported():
    code = (
        "import sys\n"
        "from app import create_app\n"
        "client = create_app({'APP_ENV': 'testing'}).test_client()\n"
        "r = client.get('/metrics')\n"
        "assert r.status_code == 404 and r.mimetype == 'text/html', r\n"
        "client.get('/healthz')\n"
        "assert 'prometheus_client' not in sys.modules\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, timeout=30
    )
    assert r.returncode == 0, r.stderr.decode()


def test_on_every_request_is_counted_by_its_rule_never_its_path():
    client = create_app({"APP_ENV": "testing", "METRICS": True}).test_client()
    before = counts(client.get("/metrics").text)
    for path in ("/healthz", "/healthz", "/nope/1", "/nope/2", "/api/nope", "/api/info"):
        client.get(path)
    client.open("/healthz", method="BREW")  # a method of its own: _OTHER
    client.post("/api/echo", data=b"{not json")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert r.headers["X-Content-Type-Options"] == "nosniff"  # through the app's own layer
    after = counts(r.text)
    added = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert added == {
        ("GET", "/healthz", "200"): 2,
        ("GET", "", "404"): 3,  # every unmatched path shares the empty route
        ("GET", "/api/info", "200"): 1,
        ("_OTHER", "", "405"): 1,
        ("POST", "/api/echo", "400"): 1,
        ("GET", "/metrics", "200"): 1,  # the first scrape
    }
    assert not any(route.startswith("/nope") for _, route, _ in after)
    names = {f.name for f in text_string_to_metric_families(r.text)}
    # Without a multiprocess folder: this process's own collectors.
    assert {"http_server_active_requests", "process_start_time_seconds"} <= names


def test_method_label_is_bounded():
    from app.metrics import method_label

    assert [method_label(m) for m in ("GET", "PATCH", "BREW", "get", "")] == [
        "GET",
        "PATCH",
        "_OTHER",
        "_OTHER",
        "_OTHER",
    ]


def test_the_folder_is_the_users_per_port_unless_prometheus_multiproc_dir_says(tmp_path):
    import tempfile

    a, b = metrics_files.folder_for(8000, {}), metrics_files.folder_for(8001, {})
    assert a != b and a.parent == b.parent == type(a)(tempfile.gettempdir())
    assert str(os.getuid()) in a.name and a.name.endswith("-8000")
    own = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    assert metrics_files.folder_for(8000, own) == tmp_path


def test_prepare_folder_makes_it_private_and_wipes_only_db_files(tmp_path):
    folder = tmp_path / "m"
    metrics_files.prepare_folder(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    (folder / "histogram_123.db").write_bytes(b"x")
    (folder / "notes.txt").write_text("kept")
    metrics_files.prepare_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_prepare_folder_refuses_a_symbolic_link_or_a_file(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(metrics_files.FolderError, match="not a directory"):
        metrics_files.prepare_folder(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(metrics_files.FolderError, match="not a directory"):
        metrics_files.prepare_folder(tmp_path / "file")


def test_a_start_with_an_unusable_folder_names_it_and_the_fix(tmp_path, monkeypatch):
    from launchers import metrics

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "file"))
    settings = load_settings({"METRICS": "1", "PORT": "8000"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR") as error:
        metrics.prepare(settings)
    assert str(tmp_path / "file") in str(error.value)


def test_prepare_names_the_folder_only_when_metrics_is_on(tmp_path, monkeypatch):
    from launchers import metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # so that the teardown unsets it
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.setattr(metrics_files.tempfile, "gettempdir", lambda: str(tmp_path))
    metrics.prepare(load_settings({"PORT": "8000"}, dotenv_path=None))
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ and not list(tmp_path.iterdir())
    metrics.prepare(load_settings({"METRICS": "1", "PORT": "8000"}, dotenv_path=None))
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_files.folder_for(8000, {}))
    assert metrics_files.folder_for(8000, {}).is_dir()


def test_gunicorn_hooks_keep_an_exited_workers_counts():
    from launchers import metrics
    from launchers.gunicorn import options

    assert options(load_settings({}, dotenv_path=None))["child_exit"] is metrics.child_exit


WRITER = """
import os, sys
from prometheus_client import Counter, Gauge, Histogram
h = Histogram("d_seconds", "d", ["route"], buckets=(0.1, 1))
c = Counter("c", "c")
g = Gauge("g", "g", multiprocess_mode="livesum")
for value in map(float, sys.argv[1:]):
    h.labels("/r").observe(value)
    c.inc()
g.set(1)
print(os.getpid())
"""


def write_as_a_worker(folder, *values: float) -> int:
    """A process that records ``values`` in the folder, as a worker would, and exits."""
    env = clean_env(PROMETHEUS_MULTIPROC_DIR=str(folder))
    out = subprocess.run(
        [sys.executable, "-c", WRITER, *map(str, values)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(out.stdout)


def totals(folder) -> dict[tuple[str, tuple], float]:
    from prometheus_client.multiprocess import MultiProcessCollector

    collector = MultiProcessCollector(None, str(folder))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_folding_dead_workers_keeps_every_count_in_one_archive_per_type(tmp_path):
    metrics_files.prepare_folder(tmp_path)
    pids = [write_as_a_worker(tmp_path, 0.05, 0.5, 5) for _ in range(2)]
    before = totals(tmp_path)
    assert before[("d_seconds_count", (("route", "/r"),))] == 6
    assert before[("g", ())] == 2
    for pid in pids:
        assert metrics_files.archive_dead_worker(tmp_path, pid) == 2  # counter and histogram
    after = totals(tmp_path)
    assert {k: v for k, v in after.items() if k[0] != "g"} == {
        k: v for k, v in before.items() if k[0] != "g"
    }
    assert ("g", ()) not in after  # a live gauge goes with its process
    names = sorted(p.name for p in tmp_path.glob("*.db"))
    assert names == ["counter_archive.db", "histogram_archive.db"]
    assert metrics_files.live_pids(tmp_path) == []


def test_the_archive_is_read_like_any_worker_file(tmp_path):
    metrics_files.prepare_folder(tmp_path)
    dead = write_as_a_worker(tmp_path, 0.05)
    metrics_files.archive_dead_worker(tmp_path, dead)
    write_as_a_worker(tmp_path, 0.5)  # a live one's file beside the archive
    assert totals(tmp_path)[("d_seconds_bucket", (("le", "1.0"), ("route", "/r")))] == 2
    assert metrics_files.archive_dead_worker(tmp_path, 999_999_999) == 0  # nothing of its own


@pytest.mark.parametrize("command", ["main", "gunicorn_config"])
def test_a_refused_start_is_one_paragraph_without_traceback(command, tmp_path):
    from tests.support import PYTHON, SECRET, assert_no_traceback, free_port

    (tmp_path / "file").write_text("")
    env = clean_env(
        APP_ENV="production",
        SECRET_KEY=SECRET,
        HOST="127.0.0.1",
        PORT=free_port(),
        METRICS=1,
        PROMETHEUS_MULTIPROC_DIR=tmp_path / "file",
    )
    args = [PYTHON, "main.py"]
    if command == "gunicorn_config":
        args = [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == ConfigError.exit_code, r.stderr
    assert "METRICS is on" in r.stderr and "PROMETHEUS_MULTIPROC_DIR" in r.stderr
    assert_no_traceback(r.stderr)


def test_granians_server_folds_a_replaced_workers_files_after_replacing_it(monkeypatch):
    from types import SimpleNamespace

    from launchers import metrics

    calls = []

    class FakeGranian:  # what launchers.metrics relies on: wrks[idx].inner.pid, _respawn_workers
        def __init__(self) -> None:
            self.wrks = [SimpleNamespace(inner=SimpleNamespace(pid=pid)) for pid in (11, 12)]

        def _respawn_workers(self, workers, *args, **kwargs):
            calls.append(("respawn", tuple(workers)))
            for idx in workers:
                self.wrks[idx] = SimpleNamespace(inner=SimpleNamespace(pid=100 + idx))

    monkeypatch.setattr(metrics, "worker_exited", lambda pid: calls.append(("exited", pid)))
    off = load_settings({}, dotenv_path=None)
    assert metrics.granian_server(FakeGranian, off) is FakeGranian
    on = load_settings({"METRICS": "1"}, dotenv_path=None)
    metrics.granian_server(FakeGranian, on)()._respawn_workers([1, 0], "target", "loader")
    assert calls == [("respawn", (1, 0)), ("exited", 12), ("exited", 11)]
