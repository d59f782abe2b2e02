"""The machine-wide ROS domain allocator: concurrent processes and env.sh shells never share a
domain, and no domain outside 1..101 is ever handed out (no ROS needed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dualtalk_ros.launching.ros_domains import (FIRST_DOMAIN, LAST_DOMAIN, NoFreeDomain,
                                                claim_domain, is_claimed)

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys
from dualtalk_ros.launching.ros_domains import claim_domain
claims = [claim_domain() for _ in range(int(sys.argv[1]))]
print(" ".join(str(c.domain) for c in claims), flush=True)
sys.stdin.read()  # hold them until the test closes our stdin
"""


def _holder(n: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, set[int]]:
    """A second process that claims `n` domains and holds them until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    return proc, {int(d) for d in proc.stdout.readline().split()}


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_a_claimed_domain_is_in_range_locked_and_freed_on_release():
    with claim_domain() as claim:
        assert FIRST_DOMAIN <= claim.domain <= LAST_DOMAIN and FIRST_DOMAIN == 1
        assert LAST_DOMAIN == 101  # Fast DDS ports of 102 and above are ephemeral ports
        assert is_claimed(claim.domain)
    assert not is_claimed(claim.domain)


def test_two_processes_never_share_a_domain():
    env = dict(os.environ)
    env.pop("ROS_DOMAIN_ID", None)
    other, theirs = _holder(10, env)
    try:
        assert len(theirs) == 10
        mine = [claim_domain() for _ in range(10)]
        ours = {c.domain for c in mine}
        assert len(ours) == 10 and not ours & theirs, ours & theirs
        for c in mine:
            c.release()
    finally:
        _release(other)
    assert not any(is_claimed(d) for d in theirs), "a dead holder's lock outlived it"


def test_the_shells_domain_is_skipped_and_exhaustion_is_an_error(monkeypatch):
    # Never claim every domain here: a concurrent test run would find none free.
    with pytest.raises(NoFreeDomain, match="no free ROS domain in 1..101"):
        claim_domain(skip=set(range(1, 102)))
    with claim_domain() as a, claim_domain() as b:
        pair = (a.domain, b.domain)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(pair[0]))
    with claim_domain(skip=set(range(1, 102)) - set(pair)) as claim:
        assert claim.domain == pair[1]  # pair[0] is the shell's, the rest were skipped


@pytest.mark.skipif(not Path("/usr/bin/flock").exists(), reason="flock(1) not installed")
def test_an_env_sh_shell_holds_its_domain_against_the_allocator():
    script = ("unset ROS_DOMAIN_ID DUALTALK_DOMAIN_LOCK_FD; . scripts/env.sh >/dev/null; "
              "echo $ROS_DOMAIN_ID; read -r _ || true")
    shell = subprocess.Popen(["bash", "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        domain = int(shell.stdout.readline())
        assert 1 <= domain <= 101 and is_claimed(domain)
        claims = [claim_domain() for _ in range(10)]
        assert domain not in {c.domain for c in claims}
        for c in claims:
            c.release()
    finally:
        shell.stdin.close()
        assert shell.wait(timeout=30) == 0
    assert not is_claimed(domain)
