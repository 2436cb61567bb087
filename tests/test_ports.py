"""Port rules (launchers/ports.py) with made-up /proc files, plus the real pre-flight bind."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

import pytest

from launchers import checks, ports
from launchers.cli import format_error
from settings import load_settings
from settings.errors import BindError
from settings.replit import read_replit
from tests.support import free_port

NO_RIGHT = ports.port_rights(80, start=1024, uid=1000, capability=False)


def preflight(host: str, port: int) -> None:
    checks.preflight(load_settings({"HOST": host, "PORT": str(port)}, dotenv_path=None))


# --- the kernel's rule ----------------------------------------------------------------


def test_unprivileged_port_start_is_read_from_the_kernel(tmp_path: Path):
    knob = tmp_path / "ip_unprivileged_port_start"
    knob.write_text("0\n")  # what Docker sets inside containers
    assert ports.unprivileged_port_start(knob, platform="linux") == 0
    knob.write_text("80\n")
    assert ports.unprivileged_port_start(knob, platform="linux") == 80


@pytest.mark.parametrize("content", [None, "", "not a number"])
def test_unprivileged_port_start_falls_back_to_1024(tmp_path: Path, content):
    knob = tmp_path / "knob"
    if content is not None:
        knob.write_text(content)
    assert ports.unprivileged_port_start(knob, platform="linux") == 1024


def test_other_systems_use_the_classic_rule(tmp_path: Path):
    knob = tmp_path / "knob"
    knob.write_text("0")  # never read off Linux
    assert ports.unprivileged_port_start(knob, platform="darwin") == 1024
    assert ports.unprivileged_port_start(knob, platform="win32") == 0  # no privileged ports


@pytest.mark.parametrize(
    ("cap_eff", "expected"),
    [
        ("0000000000000400", True),  # only CAP_NET_BIND_SERVICE (bit 10)
        ("000001ffffffffff", True),  # root's full set
        ("0000000000000000", False),  # an ordinary user
        ("00000000000003ff", False),  # bits 0-9, not 10
        ("0000000000000800", False),  # bit 11 only
    ],
)
def test_capability_is_bit_10_of_the_effective_set(tmp_path: Path, cap_eff, expected):
    status = tmp_path / "status"
    status.write_text(
        "Name:\tpython\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000400\n"
        f"CapEff:\t{cap_eff}\nCapBnd:\t000001ffffffffff\n"
    )
    assert ports.has_net_bind_capability(status) is expected


def test_no_status_file_means_no_capability(tmp_path: Path):
    assert ports.has_net_bind_capability(tmp_path / "missing") is False
    (tmp_path / "garbled").write_text("CapEff:\tzz\n")
    assert ports.has_net_bind_capability(tmp_path / "garbled") is False


@pytest.mark.parametrize(
    ("port", "start", "uid", "capability", "allowed", "privileged", "words"),
    [
        (5000, 1024, 65534, False, True, False, "unprivileged"),
        (1024, 1024, 65534, False, True, False, "unprivileged"),
        (1023, 1024, 65534, False, False, True, "uid 65534"),
        (80, 1024, 65534, False, False, True, "lacks CAP_NET_BIND_SERVICE"),
        (80, 1024, 0, False, True, True, "root"),
        (80, 1024, 65534, True, True, True, "has CAP_NET_BIND_SERVICE"),
        (80, 0, 65534, False, True, False, "unprivileged"),  # a container's setting
        (80, 81, 1000, False, False, True, "below 81"),
    ],
)
def test_port_rights(port, start, uid, capability, allowed, privileged, words):
    rights = ports.port_rights(port, start=start, uid=uid, capability=capability)
    assert (rights.allowed, rights.privileged) == (allowed, privileged)
    assert words in rights.reason and str(port) in rights.reason


# --- .replit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[ports]]\nlocalPort = 8080\nexternalPort = 80\n", 8080),
        (
            "[[ports]]\nlocalPort = 3000\nexternalPort = 3000\n"
            "[[ports]]\nlocalPort = 8000\nexternalPort = 80\n",
            8000,
        ),
        ("[[ports]]\nlocalPort = 3000\nexternalPort = 3000\n", 5000),  # nothing maps to 80
        ("run = 'python3 main.py'\n", 5000),
        ("this is [not toml", 5000),
        ("[[ports]]\nlocalPort = 'x'\nexternalPort = 80\n", 5000),
    ],
)
def test_replit_internal_port(tmp_path: Path, text, expected):
    replit = tmp_path / ".replit"
    replit.write_text(text)
    assert read_replit(replit).internal_port == expected


def test_replit_internal_port_without_a_file(tmp_path: Path):
    assert read_replit(tmp_path / ".replit").internal_port == 5000


def test_the_repository_replit_maps_5000():
    assert read_replit().internal_port == 5000


# --- the messages ------------------------------------------------------------------------


def test_real_interpreter_resolves_a_venv_symlink(tmp_path: Path):
    link = tmp_path / "python"
    link.symlink_to(os.path.realpath(sys.executable))
    assert ports.real_interpreter(str(link)) == os.path.realpath(sys.executable)
    assert not Path(ports.real_interpreter(str(link))).is_symlink()


def test_privileged_port_message_names_every_fix():
    message = ports.privileged_port_problem("0.0.0.0", NO_RIGHT).message
    assert "0.0.0.0:80" in message and "Errno 13" in message
    for words in (
        "reverse proxy",
        "deploy/nginx/",
        "docker run -p 80:5000",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "iptables -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-port 5000",
        f"sudo setcap 'cap_net_bind_service=+ep' {os.path.realpath(sys.executable)}",
        "every script that interpreter runs",
        "sudo",
    ):
        assert words in message, words


def test_printed_commands_are_never_wrapped_or_split(monkeypatch):
    """The setcap path may be long and hold hyphens: it must stay one copyable line."""
    long_path = "/srv/flask-starter-" + "-".join(["deployment"] * 8) + "/venv/bin/python3.11"
    monkeypatch.setattr(ports, "real_interpreter", lambda *a: long_path)
    printed = format_error(ports.privileged_port_problem("0.0.0.0", NO_RIGHT).exception())
    setcap = [line for line in printed.splitlines() if "setcap 'cap_net_bind_service" in line]
    assert len(setcap) == 1 and len(setcap[0]) > 100
    assert setcap[0].strip() == f"sudo setcap 'cap_net_bind_service=+ep' {long_path}"
    iptables = [line for line in printed.splitlines() if "iptables" in line]
    assert iptables and iptables[0].rstrip().endswith("--to-port 5000")
    prose = [line for line in printed.splitlines() if not line.startswith("    ")]
    assert all(len(line) <= 100 for line in prose)  # the explanation itself is wrapped


def test_in_use_message_names_port_holder_and_fixes():
    holder = ports.Holder(4242, "python main.py")
    message = ports.in_use_problem("127.0.0.1", 5000, holder, 5001).message
    for words in ("127.0.0.1:5000", "pid 4242 (python main.py)", "kill 4242", "PORT=5001"):
        assert words in message
    assert "Errno 98" in message and "ss -ltnp 'sport = :5000'" in message
    unseen = ports.in_use_problem("0.0.0.0", 5000, None, None).message
    assert "cannot see" in unseen and "PORT" in unseen


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EADDRNOTAVAIL, "not an address of this machine"),
        (errno.EACCES, "setcap"),
        (errno.EINVAL, "Cannot listen on 10.0.0.1:8000"),
    ],
)
def test_explain_bind_error(code, words):
    error = OSError(code, os.strerror(code))
    assert words in ports.bind_problem("10.0.0.1", 8000, error).message


def test_explain_an_unresolvable_host_name():
    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert "does not resolve" in ports.bind_problem("no-such-host", 8000, error).message


# --- who holds a port: a made-up /proc ---------------------------------------------------

TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
)


def tcp_line(n: int, local: str, state: str, inode: str) -> str:
    return (
        f"   {n}: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000  "
        f"1000        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )


def fake_proc(tmp_path: Path, tcp: list[str], tcp6: list[str], processes: dict) -> Path:
    """A /proc with net/tcp, net/tcp6 and, per pid, fd symlinks and a cmdline."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(TCP_HEADER + "".join(tcp))
    (proc / "net" / "tcp6").write_text(TCP_HEADER + "".join(tcp6))
    (proc / "self").mkdir()  # not a pid: skipped
    for pid, (cmdline, targets) in processes.items():
        fd = proc / str(pid) / "fd"
        fd.mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(cmdline)
        for n, target in enumerate(targets):
            (fd / str(n)).symlink_to(target)  # dangling, like the real "socket:[...]"
    return proc


def test_find_holder_follows_the_listening_inode(tmp_path: Path):
    port_hex = f"{5000:04X}"
    proc = fake_proc(
        tmp_path,
        tcp=[
            tcp_line(0, f"0100007F:{port_hex}", "06", "0"),  # TIME_WAIT: no inode
            tcp_line(1, f"0100007F:{port_hex}", "0A", "777"),
            tcp_line(2, "0100007F:1F90", "0A", "888"),  # another port
        ],
        tcp6=[],
        processes={
            10: (b"bash\0", ["/dev/null", "pipe:[5]"]),
            4242: (b"python\0-c\0import x\nprint(1)\0", ["/dev/null", "socket:[777]"]),
            99: (b"other\0", ["socket:[888]"]),
        },
    )
    holder = ports.find_holder(5000, proc)
    assert holder == ports.Holder(4242, "python -c import x print(1)")  # one line, no newline
    assert str(holder) == "pid 4242 (python -c import x print(1))"


def test_find_holder_reads_tcp6(tmp_path: Path):
    local = "00000000000000000000000001000000:1388"  # [::1]:5000
    proc = fake_proc(
        tmp_path,
        tcp=[],
        tcp6=[tcp_line(0, local, "0A", "555")],
        processes={31: (b"gunicorn: master\0", ["socket:[555]"])},
    )
    assert ports.find_holder(5000, proc) == ports.Holder(31, "gunicorn: master")


def test_find_holder_falls_back_to_a_bound_socket_that_does_not_listen(tmp_path: Path):
    proc = fake_proc(
        tmp_path,
        tcp=[tcp_line(0, "00000000:1388", "07", "321")],
        tcp6=[],
        processes={77: (b"python3\0bind-only.py\0", ["socket:[321]"])},
    )
    assert ports.find_holder(5000, proc) == ports.Holder(77, "python3 bind-only.py")


def test_find_holder_without_a_visible_owner(tmp_path: Path):
    proc = fake_proc(
        tmp_path,
        tcp=[tcp_line(0, "00000000:1388", "0A", "444")],
        tcp6=[],
        processes={5: (b"sshd\0", ["socket:[1]"])},  # another user's fds are unreadable
    )
    assert ports.find_holder(5000, proc) is None
    assert ports.find_holder(5001, proc) is None


def test_a_long_command_is_shortened(tmp_path: Path):
    proc = fake_proc(
        tmp_path,
        tcp=[tcp_line(0, "00000000:1388", "0A", "9")],
        tcp6=[],
        processes={8: (b"x" * 300 + b"\0", ["socket:[9]"])},
    )
    holder = ports.find_holder(5000, proc)
    assert holder and len(holder.command) == 100 and holder.command.endswith("...")


# --- the real pre-flight bind --------------------------------------------------------------


def test_preflight_passes_on_a_free_port():
    preflight("127.0.0.1", free_port())


def test_preflight_names_this_process_as_the_holder():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(BindError) as caught:
            preflight("127.0.0.1", port)
    message = str(caught.value)
    assert f"port {port} is already in use by pid {os.getpid()}" in message
    assert f"kill {os.getpid()}" in message and "PORT=" in message


def test_time_wait_is_not_in_use():
    """A restart binds while the last run's connections sit in TIME_WAIT, as the servers do.

    Linux lets a bind through TIME_WAIT only when both sockets set SO_REUSEADDR:
    the previous server did (they all do), so the pre-flight bind must too.
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end goes to TIME_WAIT
        client.recv(1)
        client.close()
    assert f"0100007F:{port:04X}" in Path("/proc/net/tcp").read_text()  # really in TIME_WAIT
    with socket.socket() as plain, pytest.raises(OSError) as refused:
        plain.bind(("127.0.0.1", port))  # without SO_REUSEADDR: refused
    assert refused.value.errno == errno.EADDRINUSE
    preflight("127.0.0.1", port)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may bind port 80 here")
def test_root_may_bind_a_privileged_port():
    assert ports.can_bind_port(80)
    settings = load_settings({"HOST": "127.0.0.1", "PORT": "80"}, dotenv_path=None)
    assert checks.port_problems(settings, try_bind=lambda host, port: None) == []


def hold_two_neighbours() -> tuple[socket.socket, socket.socket, int]:
    """Listeners on two neighbouring loopback ports, P and P + 1."""
    for _ in range(50):
        port = free_port()
        first, second = socket.socket(), socket.socket()
        try:
            first.bind(("127.0.0.1", port))
            second.bind(("127.0.0.1", port + 1))
        except OSError:
            first.close()
            second.close()
            continue
        first.listen()
        second.listen()
        return first, second, port
    raise AssertionError("no two neighbouring loopback ports were free")


def test_next_free_port_skips_a_held_one():
    first, second, port = hold_two_neighbours()
    with first, second:
        suggestion = ports.next_free_port("127.0.0.1", port)
        assert suggestion is not None and suggestion > port + 1
        assert ports.try_bind("127.0.0.1", suggestion) is None
