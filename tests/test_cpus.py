"""The default worker count follows the CPUs this process may use, not the host's."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings.cpus import usable_cpus


def cgroup_fixture(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(membership)
    return root, proc


def count(tmp_path, membership, files, affinity=64, host=64):
    root, proc = cgroup_fixture(tmp_path, membership, files)
    return usable_cpus(
        sched_getaffinity=lambda pid: set(range(affinity)),
        cpu_count=lambda: host,
        cgroup_root=root,
        proc_self_cgroup=proc,
    )


def test_v2_quota_rounds_up(tmp_path):
    assert count(tmp_path, "0::/pod\n", {"pod/cpu.max": "150000 100000\n"}) == 2


def test_v2_max_means_no_limit(tmp_path):
    assert count(tmp_path, "0::/pod\n", {"pod/cpu.max": "max 100000\n"}, affinity=6) == 6


def test_v2_limit_on_a_parent_applies(tmp_path):
    files = {"kubepods/cpu.max": "100000 100000\n", "kubepods/pod/cpu.max": "max 100000\n"}
    assert count(tmp_path, "0::/kubepods/pod\n", files) == 1


def test_v2_namespaced_path_falls_back_to_the_mount_root(tmp_path):
    assert count(tmp_path, "0::/docker/abc\n", {"cpu.max": "50000 100000\n"}) == 1


def test_v1_quota(tmp_path):
    files = {
        "cpu,cpuacct/docker/x/cpu.cfs_quota_us": "300000\n",
        "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n",
    }
    assert count(tmp_path, "4:cpu,cpuacct:/docker/x\n3:memory:/docker/x\n", files) == 3


def test_v1_unlimited(tmp_path):
    files = {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}
    assert count(tmp_path, "4:cpu,cpuacct:/\n", files, affinity=3) == 3


def test_no_cgroup_uses_affinity_not_the_host_count(tmp_path):
    assert count(tmp_path, "", {}, affinity=2, host=64) == 2


def test_affinity_smaller_than_quota(tmp_path):
    assert count(tmp_path, "0::/\n", {"cpu.max": "800000 100000\n"}, affinity=2) == 2


def test_without_affinity_falls_back_to_cpu_count(tmp_path):
    root, proc = cgroup_fixture(tmp_path, "", {})
    assert (
        usable_cpus(
            sched_getaffinity=None, cpu_count=lambda: 5, cgroup_root=root, proc_self_cgroup=proc
        )
        == 5
    )


@pytest.mark.parametrize("text", ["garbage", "0 100000", "100000 0", ""])
def test_malformed_cpu_max_is_ignored(tmp_path, text):
    assert count(tmp_path, "0::/\n", {"cpu.max": text}, affinity=4) == 4
