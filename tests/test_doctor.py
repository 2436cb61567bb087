"""``python main.py doctor``: each check with made-up facts, then the command for real."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launchers import doctor, ports
from launchers.doctor import OK, PROBLEM, WARNING, Facts, Finding
from launchers.settings import load_settings
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

VERSIONS = {"flask": "3.1.3", "werkzeug": "3.1.9", "gunicorn": "27.0.1", "waitress": "3.0.2"}


def facts(**changes) -> Facts:
    """A plain Linux machine with the advisory-free versions installed, as the default."""
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
        **changes,
    }
    return Facts(**values)


def settings(**environ):
    env = {"ENV_FILE": "none", **{k: str(v) for k, v in environ.items()}}
    return load_settings(env, dotenv_path=None, check=False)


def levels(findings: list[Finding]) -> set[str]:
    return {f.level for f in findings}


def text(findings: list[Finding]) -> str:
    return "\n".join(f"{f.level} {f.check} {f.text} {f.fix}" for f in findings)


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


# --- launcher ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "platform", "words"),
    [
        ({}, "linux", "auto chooses dev (APP_ENV=development)"),
        ({"APP_ENV": "production", "SECRET_KEY": SECRET}, "linux", "auto chooses gunicorn"),
        ({"APP_LAUNCHER": "waitress"}, "linux", "APP_LAUNCHER=waitress (from environment)"),
    ],
)
def test_the_launcher_and_why(environ, platform, words):
    found = doctor.check_launcher(settings(**environ), facts(platform=platform))
    assert found.level == OK and words in found.text


def test_gunicorn_on_windows_is_a_problem():
    found = doctor.check_launcher(settings(APP_LAUNCHER="gunicorn"), facts(platform="win32"))
    assert found.level == PROBLEM and "Windows" in found.text and "waitress" in found.fix


def test_a_launcher_that_is_not_installed_is_a_problem():
    found = doctor.check_launcher(
        settings(APP_LAUNCHER="waitress"), facts(versions={**VERSIONS, "waitress": None})
    )
    assert found.level == PROBLEM and "'waitress' is not installed" in found.text
    assert "pip install" in found.fix


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
        (
            {"HOST": "127.0.0.1", "REPLIT_DEPLOYMENT": "1", "SECRET_KEY": SECRET},
            {"environ": {"REPLIT_DEPLOYMENT": "1"}},
            PROBLEM,
            "this port was never opened",
        ),
        ({"HOST": "0.0.0.0"}, {}, OK, "every interface"),
        ({"HOST": "0.0.0.0", "TRUSTED_PROXY_HOPS": "1"}, {}, WARNING, "bypass the proxy"),
        ({"HOST": "::", "TRUSTED_PROXY_HOPS": "2"}, {}, WARNING, "bypass the proxy"),
        ({"HOST": "127.0.0.1", "TRUSTED_PROXY_HOPS": "1"}, {}, WARNING, "only this machine"),
        ({"HOST": "10.1.2.3"}, {}, OK, "only that interface"),
    ],
)
def test_bind_address(environ, machine, level, words):
    found = doctor.check_bind_address(settings(**environ), facts(**machine))
    assert found.level == level and words in found.text
    assert (found.fix != "") == (level != OK)


# --- port rights and holder ------------------------------------------------------------------


def test_an_unprivileged_port_is_fine():
    found = doctor.check_port_rights(settings(PORT=5000), facts())
    assert levels(found) == {OK} and "unprivileged" in text(found)


def test_a_privileged_port_without_the_right_is_a_problem_with_every_fix():
    found = doctor.check_port_rights(settings(PORT=80), facts(uid=65534))
    assert levels(found) == {PROBLEM}
    (finding,) = found
    assert "port 80 is privileged (below 1024)" in finding.text and "uid 65534" in finding.text
    for words in ("deploy/nginx/", "docker run -p 80:", "AmbientCapabilities", "REDIRECT"):
        assert words in finding.fix
    assert f"setcap 'cap_net_bind_service=+ep' {ports.real_interpreter()}" in finding.fix


def test_the_capability_is_reported():
    found = doctor.check_port_rights(settings(PORT=80), facts(uid=65534, net_bind_capability=True))
    assert levels(found) == {OK} and "has CAP_NET_BIND_SERVICE" in text(found)


def test_root_on_a_privileged_port_is_a_warning():
    found = doctor.check_port_rights(settings(PORT=443), facts(uid=0))
    assert levels(found) == {WARNING} and "root's power" in text(found)


def test_a_container_that_lowered_the_start_needs_nothing():
    found = doctor.check_port_rights(settings(PORT=80), facts(uid=65534, unprivileged_start=0))
    assert levels(found) == {OK}


def test_windows_has_no_privileged_ports():
    found = doctor.check_port_rights(settings(PORT=80), facts(uid=None, platform="win32"))
    assert levels(found) == {OK}


def test_the_replit_port_notice_is_shown(monkeypatch):
    monkeypatch.setattr(ports, "has_net_bind_capability", lambda *a: False)
    monkeypatch.setattr(ports, "effective_uid", lambda: 65534)
    replit_settings = settings(PORT=80, REPLIT_DEPLOYMENT=1, SECRET_KEY=SECRET)
    assert replit_settings.port == 5000
    found = doctor.check_port_rights(
        replit_settings, facts(uid=65534, environ={"REPLIT_DEPLOYMENT": "1"})
    )
    assert levels(found) == {OK} and "PORT=80 ignored" in text(found)


def in_use(host: str, port: int) -> OSError:
    return OSError(errno.EADDRINUSE, "Address already in use")


def test_a_free_port():
    found = doctor.check_port_free(
        settings(PORT=5000), facts(), try_bind=lambda h, p: None, find_holder=lambda p: None
    )
    assert found.level == OK and "free" in found.text


def test_a_held_port_names_its_holder():
    holder = ports.Holder(4321, "python main.py")
    found = doctor.check_port_free(
        settings(PORT=5000, HOST="127.0.0.1"),
        facts(),
        try_bind=in_use,
        find_holder=lambda p: holder,
    )
    assert found.level == PROBLEM and "in use by pid 4321 (python main.py)" in found.text
    assert "kill 4321" in found.fix and "PORT=" in found.fix


def test_a_held_port_whose_holder_is_hidden():
    found = doctor.check_port_free(
        settings(PORT=5000), facts(), try_bind=in_use, find_holder=lambda p: None
    )
    assert found.level == PROBLEM and "cannot see" in found.text and "ss -ltnp" in found.fix


def test_a_privileged_port_is_not_test_bound_but_its_holder_is_still_found():
    def must_not_bind(host, port):
        raise AssertionError("no test bind without the right")

    holder = ports.Holder(1, "nginx: master process")
    found = doctor.check_port_free(
        settings(PORT=80), facts(uid=65534), try_bind=must_not_bind, find_holder=lambda p: holder
    )
    assert found.level == PROBLEM and "nginx" in found.text
    found = doctor.check_port_free(
        settings(PORT=80), facts(uid=65534), try_bind=must_not_bind, find_holder=lambda p: None
    )
    assert found.level == OK


def test_an_address_that_is_not_ours():
    found = doctor.check_port_free(
        settings(HOST="10.9.9.9"),
        facts(),
        try_bind=lambda h, p: OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"),
    )
    assert found.level == PROBLEM and "not an address of this machine" in found.text


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


@pytest.mark.parametrize(
    ("environ", "check", "words"),
    [
        ({"APP_ENV": "production"}, "secrets", "SECRET_KEY is not set"),
        ({"APP_ENV": "production", "SECRET_KEY": "short"}, "secrets", "too weak"),
        ({"APP_ENV": "production", "SECRET_KEY": SECRET, "FLASK_DEBUG": "1"}, "debug", "FLASK"),
        (
            {"APP_ENV": "production", "SECRET_KEY": SECRET, "APP_LAUNCHER": "dev"},
            "launcher",
            "APP_LAUNCHER=dev",
        ),
    ],
)
def test_production_problems(environ, check, words):
    found = doctor.check_production(settings(**environ))
    problems = [f for f in found if f.level == PROBLEM]
    assert [f.check for f in problems] == [check] and words in problems[0].text
    assert problems[0].fix


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


# --- versions ------------------------------------------------------------------------------


def test_versions_at_or_above_the_minimums():
    found = doctor.check_versions(facts(), "gunicorn")
    assert levels(found) == {OK} and "Flask 3.1.3" in text(found)


@pytest.mark.parametrize(
    ("package", "version"),
    [("flask", "3.1.2"), ("werkzeug", "3.1.5"), ("gunicorn", "22.0.0"), ("waitress", "3.0.0")],
)
def test_an_old_version_is_a_warning(package, version):
    found = doctor.check_versions(facts(versions={**VERSIONS, package: version}), "dev")
    old = [f for f in found if f.level == WARNING]
    assert len(old) == 1 and version in old[0].text and f"{package}>=" in old[0].fix


def test_a_missing_package_matters_only_when_needed():
    found = doctor.check_versions(facts(versions={**VERSIONS, "gunicorn": None}), "waitress")
    assert levels(found) == {OK} and "gunicorn not installed (not needed here)" in text(found)
    found = doctor.check_versions(facts(versions={**VERSIONS, "gunicorn": None}), "gunicorn")
    assert PROBLEM in levels(found)


@pytest.mark.parametrize(
    ("installed", "minimum", "older"),
    [
        ("3.1.2", "3.1.3", True),
        ("3.1.3", "3.1.3", False),
        ("3.1.10", "3.1.6", False),  # not a string comparison
        ("3.1.6rc1", "3.1.6", True),  # a pre-release comes before its release
        ("23.0.0", "23.0.0", False),
    ],
)
def test_version_comparison(installed, minimum, older):
    assert doctor.is_older(installed, minimum) is older


def test_version_comparison_without_packaging(monkeypatch):
    monkeypatch.setitem(sys.modules, "packaging.version", None)  # import now fails
    assert doctor.is_older("3.1.10", "3.1.6") is False
    assert doctor.is_older("2.9", "3.0.1") is True


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
    problems = [f for f in found if f.level == PROBLEM]
    assert len(problems) == 1 and "PORT='abc'" in problems[0].text
    assert any(f.check == "platform" for f in found) and any(f.check == "versions" for f in found)


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
