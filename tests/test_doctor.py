"""``python main.py doctor``: each check with made-up facts, then the command for real."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from launchers import checks, doctor, ports
from launchers.doctor import OK, PROBLEM, WARNING, Facts, Finding
from launchers.holders import Holder
from settings import Context, load_settings
from settings.errors import BindError, ConfigError, LauncherUnavailable
from tests.support import (
    PYTHON,
    ROOT,
    SECRET,
    assert_no_traceback,
    clean_env,
    copy_project,
    free_port,
    port_holder,
    run_main,
    setpriv_prefix,
)

PINS = doctor.pinned_versions(ROOT / "requirements.txt")
VERSIONS = {name: PINS[name] for name in ("flask", "werkzeug", "gunicorn", "waitress")}


def facts(**changes) -> Facts:
    """A plain Linux machine with requirements.txt's pinned versions installed, as the default."""
    values = {
        "environ": {},
        "platform": "linux",
        "uid": 1000,
        "proc_version": "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)",
        "cgroup": "0::/user.slice/user-1000.slice/session-2.scope\n",
        "unprivileged_start": 1024,
        "net_bind_capability": False,
        "versions": VERSIONS,
        "replit_file": ROOT / ".replit",
        "requirements": ROOT / "requirements.txt",
        **changes,
    }
    return Facts(**values)


def _environ(environ: dict) -> dict[str, str]:
    return {"ENV_FILE": "none", **{k: str(v) for k, v in environ.items()}}


def _context(env: dict[str, str], platform: str) -> Context:
    """As ``diagnose`` builds it from the facts."""
    return Context(platform=platform, replit_deployment=env.get("REPLIT_DEPLOYMENT") == "1")


def settings(platform: str = "linux", **environ):
    env = _environ(environ)
    return load_settings(env, dotenv_path=None, context=_context(env, platform), check=False)


def refused_start(platform: str = "linux", **environ) -> ConfigError:
    """The error a start (``load_settings`` with its checks) refuses with."""
    env = _environ(environ)
    with pytest.raises(ConfigError) as refused:
        load_settings(env, dotenv_path=None, context=_context(env, platform))
    return refused.value


def said(finding: Finding) -> str:
    """A finding as one message: what a refused start prints (``Problem.message``)."""
    return f"{finding.text} {finding.fix}"


def levels(findings: list[Finding]) -> set[str]:
    return {f.level for f in findings}


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == PROBLEM]


def text(findings: list[Finding]) -> str:
    return "\n".join(f"{f.level} {f.check} {f.text} {f.fix}" for f in findings)


def doctor_environ(**environ) -> dict[str, str]:
    """For ``diagnose``: a free loopback port, so its real test bind succeeds."""
    return _environ({"PORT": free_port(), "HOST": "127.0.0.1", **environ})


# --- platform ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"environ": {"REPLIT_DEPLOYMENT": "1"}}, "a Replit deployment"),
        ({"environ": {"REPL_ID": "abc"}}, "a Replit workspace"),
        ({"container_files": ("/.dockerenv",)}, "a container (/.dockerenv)"),
        ({"container_files": ("/run/.containerenv",)}, "a container (/run/.containerenv)"),
        ({"environ": {"container": "podman"}}, "a container (container=podman)"),
        ({"cgroup": "0::/system.slice/docker-3f2a.scope\n"}, "cgroup mentions docker"),
        ({"cgroup": "1:name=systemd:/kubepods/burstable/pod1\n"}, "mentions kubepods"),
        ({"environ": {"INVOCATION_ID": "0f1e"}}, "a systemd service"),
        ({"environ": {"DYNO": "web.1"}}, "a Heroku-style dyno (DYNO=web.1)"),
        ({"platform": "win32"}, "Windows: gunicorn cannot run"),
        (
            {"proc_version": "Linux version 5.15.153.1-microsoft-standard-WSL2"},
            "WSL (/proc/version mentions Microsoft)",
        ),
        ({}, "Linux, no container, service manager or hosting platform detected"),
    ],
)
def test_platform_detection(changes, words):
    found = doctor.check_platform(facts(**changes))
    assert levels(found) == {OK} and words in text(found)


def test_several_platforms_at_once():
    found = doctor.check_platform(
        facts(container_files=("/.dockerenv",), environ={"INVOCATION_ID": "x", "DYNO": "web.1"})
    )
    assert len(found) == 3


def test_a_replit_deployment_names_the_internal_port(tmp_path: Path):
    replit = tmp_path / ".replit"
    replit.write_text("[[ports]]\nlocalPort = 8123\nexternalPort = 80\n")
    found = doctor.check_platform(facts(environ={"REPLIT_DEPLOYMENT": "1"}, replit_file=replit))
    assert "localPort 8123" in text(found)


def test_the_container_note_names_the_port_the_settings_bind():
    found = doctor.check_platform(facts(container_files=("/.dockerenv",)), settings(PORT=8000))
    assert "docker run -p 80:8000" in text(found)


# --- launcher ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "platform", "words"),
    [
        ({}, "linux", "auto chooses dev (APP_ENV=development)"),
        ({"APP_ENV": "production", "SECRET_KEY": SECRET}, "linux", "auto chooses gunicorn"),
        ({"APP_ENV": "production", "SECRET_KEY": SECRET}, "win32", "auto chooses waitress"),
        ({"APP_LAUNCHER": "waitress"}, "linux", "APP_LAUNCHER=waitress (from environment)"),
    ],
)
def test_the_launcher_and_why(environ, platform, words):
    found = doctor.check_launcher(settings(platform, **environ), facts(platform=platform))
    assert levels(found) == {OK} and words in text(found) and "is installed" in text(found)


def test_gunicorn_on_windows_is_a_problem():
    found = doctor.check_launcher(
        settings("win32", APP_LAUNCHER="gunicorn"), facts(platform="win32")
    )
    (problem,) = problems(found)
    assert "Windows" in problem.text and "waitress" in problem.fix


def test_a_launcher_that_is_not_installed_is_a_problem():
    found = doctor.check_launcher(
        settings(APP_LAUNCHER="waitress"), facts(versions={**VERSIONS, "waitress": None})
    )
    (problem,) = problems(found)
    assert "'waitress'" in problem.text and "not installed" in problem.text
    assert "pip install" in problem.fix


def test_the_launcher_problem_is_the_refused_start_in_the_same_words():
    chosen = settings("win32", APP_LAUNCHER="gunicorn")
    (problem,) = problems(doctor.check_launcher(chosen, facts(platform="win32")))
    with pytest.raises(LauncherUnavailable) as refused:
        checks.load_launcher(chosen)
    assert str(refused.value) == said(problem)


# --- bind address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "machine", "level", "words"),
    [
        ({"HOST": "127.0.0.1"}, {}, WARNING, "only this machine can connect"),
        ({"HOST": "::1"}, {}, WARNING, "only this machine can connect"),
        (
            {"HOST": "127.0.0.1"},
            {"container_files": ("/.dockerenv",)},
            WARNING,
            "inside a container",
        ),
        ({"HOST": "0.0.0.0"}, {}, OK, "every interface"),
        ({"HOST": "0.0.0.0", "TRUSTED_PROXY_HOPS": "1"}, {}, WARNING, "bypass the proxy"),
        ({"HOST": "::", "TRUSTED_PROXY_HOPS": "2"}, {}, WARNING, "bypass the proxy"),
        ({"HOST": "127.0.0.1", "TRUSTED_PROXY_HOPS": "1"}, {}, WARNING, "only this machine"),
        ({"HOST": "10.1.2.3"}, {}, OK, "only that interface"),
    ],
)
def test_bind_address(environ, machine, level, words):
    (found,) = doctor.check_bind_address(settings(**environ), facts(**machine))
    assert found.level == level and words in found.text
    assert (found.fix != "") == (level != OK)


def test_a_loopback_host_in_a_replit_deployment_is_the_start_rule_reported_once():
    environ = {"HOST": "127.0.0.1", "REPLIT_DEPLOYMENT": "1", "SECRET_KEY": SECRET}
    replit = facts(environ={"REPLIT_DEPLOYMENT": "1"})
    # Not the address check's own finding, but the rule a start refuses (settings.rules).
    assert doctor.check_bind_address(settings(**environ), replit) == []
    (problem,) = problems(doctor.check_production(settings(**environ)))
    assert problem.check == "address" and "this port was never opened" in problem.text
    assert "HOST=127.0.0.1 in a Replit deployment" in problem.text and "HOST=0.0.0.0" in problem.fix
    assert said(problem) == str(refused_start(**environ))
    # diagnose lists it exactly once.
    found = doctor.diagnose(facts=facts(environ=doctor_environ(**environ)))
    assert [f.check for f in problems(found) if f.check == "address"] == ["address"]


# --- port: rights, holder, bind -------------------------------------------------------------


def binds(host: str, port: int) -> OSError | None:
    return None


def must_not_bind(host: str, port: int) -> OSError | None:
    raise AssertionError("no test bind without the right")


def in_use(host: str, port: int) -> OSError:
    return OSError(errno.EADDRINUSE, "Address already in use")


def test_an_unprivileged_free_port_is_fine():
    found = doctor.check_port(settings(PORT=5000), facts(), try_bind=binds)
    assert levels(found) == {OK} and "unprivileged" in text(found)
    assert "0.0.0.0:5000 is free" in text(found)


def test_a_privileged_port_without_the_right_is_a_problem_with_every_fix():
    found = doctor.check_port(settings(PORT=80), facts(uid=65534), try_bind=must_not_bind)
    (finding,) = found  # and no test bind
    assert finding.level == PROBLEM and finding.check == "port"
    assert "port 80 is privileged (below 1024)" in finding.text and "uid 65534" in finding.text
    assert "Permission denied" in finding.text
    for words in ("deploy/nginx/", "docker run -p 80:", "AmbientCapabilities", "REDIRECT"):
        assert words in finding.fix
    assert f"setcap 'cap_net_bind_service=+ep' {ports.real_interpreter()}" in finding.fix


def test_a_privileged_port_without_the_right_is_only_that_problem(monkeypatch):
    # A start refuses on the right before any bind, so doctor looks for no holder either.
    monkeypatch.setattr(ports, "find_holder", lambda port: Holder(4242, "the-holder"))
    found = doctor.check_port(settings(PORT=80), facts(uid=65534), try_bind=must_not_bind)
    assert len(found) == 1 and "privileged" in found[0].text
    assert "the-holder" not in text(found) and "already in use" not in text(found)


def test_the_capability_is_reported():
    found = doctor.check_port(
        settings(PORT=80), facts(uid=65534, net_bind_capability=True), try_bind=binds
    )
    assert levels(found) == {OK} and "has CAP_NET_BIND_SERVICE" in text(found)


def test_root_on_a_privileged_port_is_a_warning():
    found = doctor.check_port(settings(PORT=443), facts(uid=0), try_bind=binds)
    (warning,) = [f for f in found if f.level == WARNING]
    assert "root's power" in warning.text and "reverse proxy" in warning.fix
    assert PROBLEM not in levels(found)


def test_a_container_that_lowered_the_start_needs_nothing():
    found = doctor.check_port(
        settings(PORT=80), facts(uid=65534, unprivileged_start=0), try_bind=binds
    )
    assert levels(found) == {OK}


def test_windows_has_no_privileged_ports():
    found = doctor.check_port(
        settings("win32", PORT=80), facts(uid=None, platform="win32"), try_bind=binds
    )
    assert levels(found) == {OK}


def test_the_replit_port_notice_is_shown():
    machine = facts(uid=65534, environ={"REPLIT_DEPLOYMENT": "1"})
    loaded = settings(PORT=80, REPLIT_DEPLOYMENT=1, SECRET_KEY=SECRET)
    prepared = checks.prepare(loaded, rights=doctor.rights(loaded, machine))
    assert prepared.port == 5000  # the repository's .replit localPort
    found = doctor.check_port(prepared, machine, try_bind=binds)
    assert levels(found) == {OK} and "PORT=80 ignored" in text(found)


def test_a_privileged_port_that_may_be_bound_is_kept_in_a_replit_deployment():
    machine = facts(uid=0, environ={"REPLIT_DEPLOYMENT": "1"})
    loaded = settings(PORT=80, REPLIT_DEPLOYMENT=1, SECRET_KEY=SECRET)
    prepared = checks.prepare(loaded, rights=doctor.rights(loaded, machine))
    assert prepared.port == 80 and prepared.notices == ()


def test_a_held_port_names_its_holder(monkeypatch):
    monkeypatch.setattr(ports, "find_holder", lambda port: Holder(4321, "python main.py"))
    monkeypatch.setattr(ports, "next_free_port", lambda host, port: 5001)
    found = doctor.check_port(settings(PORT=5000, HOST="127.0.0.1"), facts(), try_bind=in_use)
    (problem,) = problems(found)
    assert problem.check == "port" and "in use by pid 4321 (python main.py)" in problem.text
    assert "kill 4321" in problem.fix and "PORT=5001" in problem.fix


def test_a_held_port_whose_holder_is_hidden(monkeypatch):
    monkeypatch.setattr(ports, "find_holder", lambda port: None)
    found = doctor.check_port(settings(PORT=5000), facts(), try_bind=in_use)
    (problem,) = problems(found)
    assert "cannot see" in problem.text and "ss -ltnp" in problem.fix


def test_a_held_port_is_the_refused_start_in_the_same_words(monkeypatch):
    monkeypatch.setattr(ports, "next_free_port", lambda host, port: port + 1)
    with port_holder() as (port, pid):
        held = settings(PORT=port, HOST="127.0.0.1")
        (problem,) = problems(doctor.check_port(held, facts(uid=os.geteuid())))
        with pytest.raises(BindError) as refused:
            checks.preflight(held)
    assert f"in use by pid {pid}" in problem.text
    assert str(refused.value) == said(problem)


def test_an_address_that_is_not_ours():
    found = doctor.check_port(
        settings(HOST="10.9.9.9"),
        facts(),
        try_bind=lambda h, p: OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"),
    )
    (problem,) = problems(found)
    assert problem.check == "address" and "not an address of this machine" in problem.text


# --- .replit -------------------------------------------------------------------------------

GOOD_REPLIT = """run = "python3 main.py"
[deployment]
run = ["bash", "flask_deploy.sh"]
deploymentTarget = "cloudrun"
[[ports]]
localPort = 5000
externalPort = 80
"""


def replit_project(tmp_path: Path, text: str = GOOD_REPLIT, script: bool = True) -> Path:
    (tmp_path / ".replit").write_text(text)
    if script:
        (tmp_path / "flask_deploy.sh").write_text("exec gunicorn -c gunicorn_config.py wsgi:app\n")
    return tmp_path / ".replit"


ON_REPLIT = {"REPL_ID": "abc"}


def test_a_good_replit_file(tmp_path: Path):
    found = doctor.check_replit_file(
        settings(), facts(environ=ON_REPLIT, replit_file=replit_project(tmp_path))
    )
    assert levels(found) == {OK} and "one port, localPort 5000 -> 80" in text(found)


@pytest.mark.parametrize(
    ("replit", "script", "words"),
    [
        (GOOD_REPLIT + "[[ports]]\nlocalPort = 3000\nexternalPort = 3000\n", True, "2 [[ports]]"),
        (GOOD_REPLIT.replace("externalPort = 80", "externalPort = 8080"), True, "no localPort"),
        (GOOD_REPLIT.replace('["bash", "flask_deploy.sh"]', '"python3 main.py"'), True, "not"),
        (GOOD_REPLIT, False, "does not exist"),
        (GOOD_REPLIT.replace("localPort = 5000", "localPort = 80"), True, "privileged"),
        ("this is [not toml", True, "cannot be read"),
    ],
)
def test_a_broken_replit_file(tmp_path: Path, replit, script, words):
    path = replit_project(tmp_path, replit, script)
    on = doctor.check_replit_file(settings(), facts(environ=ON_REPLIT, replit_file=path))
    assert PROBLEM in levels(on) and words in text(on)
    off = doctor.check_replit_file(settings(), facts(replit_file=path))
    assert PROBLEM not in levels(off) and WARNING in levels(off)  # matters only on Replit


def test_a_local_port_that_differs_from_the_bind(tmp_path: Path):
    path = replit_project(tmp_path)
    on = doctor.check_replit_file(settings(PORT=8000), facts(environ=ON_REPLIT, replit_file=path))
    assert levels(on) == {PROBLEM}
    assert "localPort 5000" in text(on) and "binds 8000" in text(on) and "PORT=5000" in text(on)
    # Off Replit, a PORT set for this machine says nothing about the deployment.
    off = doctor.check_replit_file(settings(PORT=8000), facts(replit_file=path))
    assert levels(off) == {OK}
    # But the repository's own default disagreeing with .replit is worth a warning.
    path.write_text(GOOD_REPLIT.replace("localPort = 5000", "localPort = 8080"))
    default = doctor.check_replit_file(settings(), facts(replit_file=path))
    assert levels(default) == {WARNING}


def test_no_replit_file(tmp_path: Path):
    found = doctor.check_replit_file(settings(), facts(replit_file=tmp_path / ".replit"))
    assert levels(found) == {OK}


def test_the_repository_replit_file_is_consistent():
    found = doctor.check_replit_file(settings(), facts(environ=ON_REPLIT))
    assert levels(found) == {OK}, text(found)


# --- production rules ----------------------------------------------------------------------

PRODUCTION_PROBLEMS = [
    ({"APP_ENV": "production"}, "secrets", "needs SECRET_KEY, and it is not set"),
    ({"APP_ENV": "production", "SECRET_KEY": "short"}, "secrets", "too weak"),
    ({"APP_ENV": "production", "SECRET_KEY": SECRET, "FLASK_DEBUG": "1"}, "debug", "FLASK"),
    (
        {"APP_ENV": "production", "SECRET_KEY": SECRET, "APP_LAUNCHER": "dev"},
        "launcher",
        "APP_LAUNCHER=dev",
    ),
]


@pytest.mark.parametrize(("environ", "check", "words"), PRODUCTION_PROBLEMS)
def test_production_problems(environ, check, words):
    found = doctor.check_production(settings(**environ))
    assert [f.check for f in problems(found)] == [check] and words in problems(found)[0].text
    assert problems(found)[0].fix


@pytest.mark.parametrize(("environ", "check", "words"), PRODUCTION_PROBLEMS)
def test_each_production_problem_is_the_refused_start_in_the_same_words(environ, check, words):
    (problem,) = problems(doctor.check_production(settings(**environ)))
    assert said(problem) == str(refused_start(**environ))


def test_a_missing_secret_is_one_wording_with_the_command_that_makes_one():
    (problem,) = problems(doctor.check_production(settings(APP_ENV="production")))
    refused = str(refused_start(APP_ENV="production"))
    assert refused == said(problem)
    assert "secrets.token_hex(32)" in problem.fix and "secrets.token_hex(32)" in refused


def test_a_start_refuses_on_the_first_problem_and_doctor_lists_them_all():
    environ = {"APP_ENV": "production", "FLASK_DEBUG": "1"}
    listed = problems(doctor.check_production(settings(**environ)))
    assert [f.check for f in listed] == ["secrets", "debug"]
    refused = str(refused_start(**environ))
    assert refused == said(listed[0]) and "FLASK_DEBUG" not in refused
    found = doctor.diagnose(facts=facts(environ=doctor_environ(**environ)))
    assert [(f.check, f.text) for f in problems(found)] == [(f.check, f.text) for f in listed]
    assert doctor.exit_code(found) == 1
    assert "2 problems" in doctor.render(found).splitlines()[-1]


def test_a_good_production_setup():
    found = doctor.check_production(settings(APP_ENV="production", SECRET_KEY=SECRET))
    assert levels(found) == {OK}


def test_the_dev_server_in_production_when_meant_is_a_warning():
    found = doctor.check_production(
        settings(APP_ENV="production", SECRET_KEY=SECRET, APP_LAUNCHER="dev", ALLOW_DEV_SERVER=1)
    )
    assert levels(found) == {OK, WARNING}


def test_an_exposed_debugger_in_development_is_a_warning():
    exposed = doctor.check_production(settings(HOST="0.0.0.0"))
    assert WARNING in levels(exposed) and "debugger" in text(exposed)
    local = doctor.check_production(settings(HOST="127.0.0.1"))
    assert levels(local) == {OK}


# --- versions: the installed ones against requirements.txt's pins -------------------------

PINNED = """# a comment, and a line that pins nothing
-r other-requirements.txt
flask==3.1.3
werkzeug==3.1.9
gunicorn[gevent]==27.0.1; sys_platform != "win32"
waitress==3.0.2
"""
PINNED_VERSIONS = {"flask": "3.1.3", "werkzeug": "3.1.9", "gunicorn": "27.0.1", "waitress": "3.0.2"}


def pinned(tmp_path: Path, **installed: str | None) -> Facts:
    """A machine with PINNED's versions installed, but for ``installed``; its requirements.txt is PINNED."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(PINNED)
    return facts(versions={**PINNED_VERSIONS, **installed}, requirements=requirements)


def test_pinned_versions_reads_name_version_lines(tmp_path: Path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        PINNED
        + "Jinja2 == 3.1.6  # case and spaces\nblinker>=1.9\nzope.event==6.2; python_version > '3'\n"
    )
    assert doctor.pinned_versions(requirements) == {
        **PINNED_VERSIONS,
        "jinja2": "3.1.6",
        "zope.event": "6.2",
    }
    assert doctor.pinned_versions(tmp_path / "missing.txt") == {}


def test_the_pinned_versions_installed_are_ok():
    found = doctor.check_versions(facts(), "gunicorn")  # the repository's requirements.txt
    assert levels(found) == {OK} and "(as pinned)" in text(found)
    for package, version in VERSIONS.items():
        assert f"{package} {version}" in text(found)


@pytest.mark.parametrize(
    ("package", "version"),
    [
        ("flask", "3.1.2"),  # older
        ("werkzeug", "3.2.0"),  # newer: a version the project did not test, still a warning
        ("gunicorn", "22.0.0"),  # not even the chosen launcher's
        ("waitress", "3.0.2rc1"),
    ],
)
def test_a_version_other_than_the_pin_is_a_warning(tmp_path: Path, package, version):
    found = doctor.check_versions(pinned(tmp_path, **{package: version}), "dev")
    (warning,) = [f for f in found if f.level == WARNING]
    assert warning.check == "versions" and PROBLEM not in levels(found)
    assert f"{package} {version} is installed" in warning.text
    assert f"requirements.txt pins {PINNED_VERSIONS[package]}" in warning.text
    assert "pip install -r requirements.txt" in warning.fix
    (fine,) = [f for f in found if f.level == OK]
    assert package not in fine.text
    for other, pin in PINNED_VERSIONS.items():
        assert (f"{other} {pin}" in fine.text) == (other != package)
    assert doctor.exit_code(found) == 0


@pytest.mark.parametrize(
    ("package", "launcher"),
    [
        ("flask", "gunicorn"),
        ("werkzeug", "waitress"),
        ("werkzeug", "dev"),
        ("gunicorn", "gunicorn"),
        ("waitress", "waitress"),
    ],
)
def test_a_missing_package_the_app_needs_is_a_problem(tmp_path: Path, package, launcher):
    found = doctor.check_versions(pinned(tmp_path, **{package: None}), launcher)
    (problem,) = problems(found)
    assert problem.check == "versions" and f"{package} is not installed" in problem.text
    assert "pip install -r requirements.txt" in problem.fix


@pytest.mark.parametrize(
    ("package", "launcher"),
    [("gunicorn", "waitress"), ("gunicorn", "dev"), ("waitress", "gunicorn")],
)
def test_a_missing_package_not_needed_here_is_not_a_problem(tmp_path: Path, package, launcher):
    found = doctor.check_versions(pinned(tmp_path, **{package: None}), launcher)
    assert levels(found) == {OK} and package not in text(found)  # not claimed as pinned


def test_without_the_settings_only_flask_is_needed(tmp_path: Path):
    found = doctor.check_versions(pinned(tmp_path, gunicorn=None, waitress=None), None)
    assert levels(found) == {OK}
    found = doctor.check_versions(pinned(tmp_path, werkzeug=None), None)
    assert [f.check for f in problems(found)] == ["versions"]


# --- putting it together -------------------------------------------------------------------


def test_render_puts_each_fix_under_its_problem():
    out = doctor.render(
        [
            Finding(OK, "port", "fine"),
            Finding(PROBLEM, "port", "held", "kill 1\nor PORT=5001"),
            Finding(WARNING, "address", "loopback", "HOST=0.0.0.0"),
        ]
    )
    lines = out.splitlines()
    assert lines[0].startswith("ok ") and lines[1].startswith("problem ")
    assert lines[2].strip() == "fix: kill 1" and lines[3].strip() == "or PORT=5001"
    assert lines[4].startswith("warning ") and lines[5].strip() == "fix: HOST=0.0.0.0"
    assert "1 problem" in lines[-1] and "1 warning" in lines[-1]


def test_exit_code():
    assert doctor.exit_code([Finding(OK, "a", "b"), Finding(WARNING, "c", "d")]) == 0
    assert doctor.exit_code([Finding(PROBLEM, "a", "b")]) == 1


def test_a_malformed_setting_is_a_problem_and_the_rest_still_runs():
    found = doctor.diagnose(facts=facts(environ={"ENV_FILE": "none", "PORT": "abc"}))
    (problem,) = problems(found)
    assert problem.check == "settings" and "PORT='abc'" in problem.text
    assert any(f.check == "platform" for f in found)
    assert [f.level for f in found if f.check == "versions"] == [OK]


def test_a_malformed_setting_still_reports_a_missing_package():
    machine = facts(
        environ={"ENV_FILE": "none", "PORT": "abc"}, versions={**VERSIONS, "flask": None}
    )
    found = doctor.diagnose(facts=machine)
    assert [f.check for f in problems(found)] == ["settings", "versions"]


def test_diagnose_reads_the_settings_for_the_platform_of_the_facts():
    machine = facts(
        platform="win32",
        uid=None,
        environ=doctor_environ(APP_ENV="production", SECRET_KEY=SECRET),
    )
    found = doctor.diagnose(facts=machine)
    assert problems(found) == [], text(found)
    assert "auto chooses waitress" in text(found) and "Windows:" in text(found)


def test_diagnose_reads_a_replit_deployment_from_the_facts():
    # REPLIT_DEPLOYMENT=1 makes production the default: the secret is then required.
    found = doctor.diagnose(facts=facts(environ=doctor_environ(REPLIT_DEPLOYMENT="1")))
    assert "secrets" in [f.check for f in problems(found)]
    assert "a Replit deployment" in text(found)


# --- the command, for real -------------------------------------------------------------------


def run_doctor(env, *args, cwd: Path = ROOT, python: str | Path = PYTHON, nobody: bool = False):
    prefix = setpriv_prefix() if nobody else []
    result = subprocess.run(
        [*prefix, str(python), "main.py", "doctor", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert_no_traceback(result.stdout + result.stderr)
    return result


def problem_checks(output: str) -> set[str]:
    return {line.split()[1] for line in output.splitlines() if line.startswith("problem ")}


def project_copy(tmp_path: Path, local_port: int) -> Path:
    """The project's files with a .replit whose localPort is ``local_port``."""
    project = copy_project(tmp_path / "project")
    replit = project / ".replit"
    replit.write_text(replit.read_text().replace("localPort = 5000", f"localPort = {local_port}"))
    return project


def test_doctor_on_a_healthy_setup():
    port = free_port()
    result = run_doctor(clean_env(PORT=port, HOST="127.0.0.1", FLASK_DEBUG=0))
    assert result.returncode == 0, result.stdout
    assert problem_checks(result.stdout) == set()
    for line in result.stdout.splitlines():
        assert line == "" or line.split()[0] in ("ok", "warning", "fix:", "nothing"), line
    for check in ("platform", "launcher", "address", "port", ".replit", "secrets", "versions"):
        assert f" {check} " in result.stdout, check
    assert f"127.0.0.1:{port} is free" in result.stdout


def test_doctor_flags_override_the_environment():
    port = free_port()
    result = run_doctor(clean_env(PORT="abc"), "--port", str(port), "--host", "127.0.0.1")
    assert result.returncode == 0, result.stdout
    assert f"127.0.0.1:{port} is free" in result.stdout


@pytest.mark.slow  # makes the unprivileged sandbox
def test_doctor_finds_a_privileged_port(sandbox):
    env = sandbox.env(PORT=80, HOST="127.0.0.1", FLASK_DEBUG=0)
    result = run_doctor(env, cwd=sandbox.project, python=sandbox.python, nobody=True)
    assert result.returncode == 1, result.stdout
    assert problem_checks(result.stdout) == {"port"}
    assert "port 80 is privileged" in result.stdout and "uid 65534" in result.stdout
    assert f"sudo setcap 'cap_net_bind_service=+ep' {sandbox.python}" in result.stdout


def test_doctor_finds_a_held_port_and_its_holder():
    with port_holder() as (port, pid):
        result = run_doctor(clean_env(PORT=port, HOST="127.0.0.1", FLASK_DEBUG=0))
    assert result.returncode == 1, result.stdout
    assert problem_checks(result.stdout) == {"port"}
    assert f"in use by pid {pid}" in result.stdout and f"kill {pid}" in result.stdout


def test_doctor_finds_a_loopback_host_in_a_replit_deployment(tmp_path: Path):
    port = free_port()
    project = project_copy(tmp_path, port)
    env = clean_env(REPLIT_DEPLOYMENT=1, SECRET_KEY=SECRET, HOST="127.0.0.1", PORT=port)
    result = run_doctor(env, cwd=project)
    assert result.returncode == 1, result.stdout
    assert problem_checks(result.stdout) == {"address"}
    assert "HOST=127.0.0.1 in a Replit deployment" in result.stdout


def test_doctor_finds_a_missing_secret_in_production():
    env = clean_env(APP_ENV="production", PORT=free_port(), HOST="127.0.0.1")
    result = run_doctor(env)
    assert result.returncode == 1, result.stdout
    assert problem_checks(result.stdout) == {"secrets"}
    assert "secrets.token_hex" in result.stdout


def test_doctor_finds_a_replit_local_port_that_differs_from_the_bind(tmp_path: Path):
    project = project_copy(tmp_path, free_port())
    port = free_port()
    env = clean_env(REPL_ID="test-repl", PORT=port, HOST="0.0.0.0", FLASK_DEBUG=0)
    result = run_doctor(env, cwd=project)
    assert result.returncode == 1, result.stdout
    assert problem_checks(result.stdout) == {".replit"}
    assert f"but the server binds {port}" in result.stdout


def test_doctor_with_a_malformed_value():
    result = run_doctor(clean_env(WEB_CONCURRENCY="0"))
    assert result.returncode == 1
    assert problem_checks(result.stdout) == {"settings"}
    assert "WEB_CONCURRENCY='0'" in result.stdout


def test_doctor_in_main_help():
    result = run_main("--help", env=clean_env())
    assert "doctor" in result.stdout and "1  doctor found a problem" in result.stdout


@pytest.mark.skipif(not os.path.exists("/.dockerenv"), reason="this machine is not a container")
def test_doctor_sees_this_container():
    result = run_doctor(clean_env(PORT=free_port(), HOST="127.0.0.1"))
    assert "a container (/.dockerenv)" in result.stdout
