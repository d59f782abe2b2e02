"""One ROS domain allocator for every test run, benchmark and shell on this machine.

Why: two DDS processes on one domain see each other's topics, so two test runs (or a test and
a benchmark, or a developer's shell) that share a domain mix their messages and fail for the
wrong reason. Domains 102 and above are not used at all: Fast DDS derives its UDP ports from
the domain (7400 + 250 x domain + offsets), and from domain 102 on they fall into Linux's
ephemeral port range (32768-60999), where any outgoing connection may already hold them.

A domain is claimed by holding a `flock` on /tmp/dualtalk-ros-domains/<id>.lock for as long as
it is used; the kernel drops the lock when its holder exits, so nothing goes stale. Claims scan
from a random start, so concurrent runs rarely even contend. `scripts/env.sh` takes the same
lock (flock(1) on the same file) for its shell's ROS_DOMAIN_ID and keeps it for the shell's
life; that shell's domain is also skipped by name, for shells that set it by hand.
Domain 0 is skipped too: it is where every ROS process without ROS_DOMAIN_ID lives.

No rclpy here: the benchmark and the shell tools use it without a ROS import.
"""
from __future__ import annotations

import fcntl
import os
import random
from pathlib import Path

LOCK_DIR = Path("/tmp/dualtalk-ros-domains")
FIRST_DOMAIN = 1  # 0 is the default domain of unconfigured ROS processes
LAST_DOMAIN = 101  # Fast DDS ports of domains >= 102 fall in the ephemeral port range
_used_here: set[int] = set()  # domains this process claimed before: a leaked child may remain


class NoFreeDomain(RuntimeError):
    """Every domain in FIRST_DOMAIN..LAST_DOMAIN is claimed by some process on this machine."""


class DomainClaim:
    """A claimed ROS domain: `domain` is ours until `release()` (or this process exits)."""

    def __init__(self, domain: int, fd: int) -> None:
        self.domain, self._fd = domain, fd

    def release(self) -> None:
        """Drop the lock; the file stays (deleting it would race with a concurrent claim)."""
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = -1

    def __enter__(self) -> "DomainClaim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(domain: int) -> Path:
    return LOCK_DIR / f"{domain}.lock"


def _try_lock(domain: int) -> int | None:
    """An open descriptor holding the domain's lock, or None when another process holds it."""
    LOCK_DIR.mkdir(exist_ok=True)
    try:
        os.chmod(LOCK_DIR, 0o1777)  # other users on this machine claim domains here too
    except PermissionError:
        pass
    # O_RDONLY: another user's lock file is locked just as well without write permission.
    fd = os.open(lock_path(domain), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def claim_domain(skip: set[int] | None = None) -> DomainClaim:
    """Claim a free domain in FIRST_DOMAIN..LAST_DOMAIN, scanning from a random start.

    Skipped: `skip`, this environment's ROS_DOMAIN_ID (the calling shell's domain) and, while
    others are free, the domains this process claimed before. Raises NoFreeDomain when none is.
    """
    count = LAST_DOMAIN - FIRST_DOMAIN + 1
    start = random.SystemRandom().randrange(count)
    order = [FIRST_DOMAIN + (start + i) % count for i in range(count)]
    excluded = set(skip or ())
    shell = os.environ.get("ROS_DOMAIN_ID", "")
    if shell.isdigit():
        excluded.add(int(shell))
    fresh = [d for d in order if d not in _used_here]
    for domain in fresh + [d for d in order if d in _used_here]:
        if domain in excluded:
            continue
        fd = _try_lock(domain)
        if fd is not None:
            _used_here.add(domain)
            return DomainClaim(domain, fd)
    raise NoFreeDomain(f"no free ROS domain in {FIRST_DOMAIN}..{LAST_DOMAIN}: every one is "
                       f"locked under {LOCK_DIR} (see `fuser {LOCK_DIR}/*.lock`)")


def is_claimed(domain: int) -> bool:
    """Whether some process holds `domain` now (a probe: takes and drops the lock if free)."""
    fd = _try_lock(domain)
    if fd is None:
        return True
    os.close(fd)
    return False
