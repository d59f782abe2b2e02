"""`dualtalk-fuzz`: the DualTalk node at its defaults under a hostile stream, measured.

`dualtalk-fuzz [--seconds 60] [--seed 0] [--out F.json] [--domain N] [--warmup-s S] [--clean]`
starts `dualtalk_node` as its own process (no parameter: its defaults) on a ROS domain of its
own, waits until the node reports on /diagnostics, publishes the valid conversation alone for
a warm-up (WARMUP_S), then for --seconds mixed with every bad kind of message
(`hostile_messages`) on every input topic, then lets the node settle for SETTLE_S and stops it.
A probe process (`fuzz_probe`) records the output meanwhile; the figures and the counter check
are `fuzz_report`'s and `counter_check`'s. The last line printed reads

    fuzz: N messages, C crashes, min rate R fps, jitter p99 J ms, rss growth G MiB, nan K, \
counters ok|bad

Exit status 0 when every goal of issue 24 holds, 1 when one does not, 2 for a usage error.
--out writes every figure, the per-kind sent counts and every counter check as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np
import rclpy
from tqdm import tqdm

from dualtalk_core.child_processes import rss_mib, stop
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.fuzzing import hostile_messages as hostile
from dualtalk_ros.fuzzing.fuzz_report import Accounting, Window, build_report
from dualtalk_ros.fuzzing.input_contract import invalid_reason
from dualtalk_ros.launching.ros_domains import DomainClaim, NoFreeDomain, claim_domain
from dualtalk_ros.nodes.qos import SENSOR

BAD_PER_S = 100.0  # bad messages a second, on top of ~92 valid ones: >= 10,000 in 60 s
TICK_S = 0.005  # the publishing loop's period (chunks go out within this of completing)
SETTLE_S = 2.0  # after publishing, before the final /diagnostics is read
# Valid conversation only, before the first bad message: the node's input window fills and its
# memory reaches its working size (measured: +40 MiB over the first 8 s of a clean stream), so
# the RSS growth measured from here on is what the hostile stream costs.
WARMUP_S = DualTalkNodeSettings().stream.window_ms / 1000.0 + 2.0
START_TIMEOUT_S = 120.0  # model load on a loaded 2-core machine
MATCH_TIMEOUT_S = 10.0
TOPICS = {"self_audio": "self_audio", "partner_audio": "partner_audio",
          "partner_face": "partner_face", "self_audio_raw": "self_voice",
          "partner_audio_raw": "partner_voice"}


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line naming the option and the problem, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="dualtalk-fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long to publish (s; default 60: >= 10,000 messages)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the stream")
    parser.add_argument("--out", type=Path, help="JSON file of every figure")
    parser.add_argument("--domain", type=int,
                        help="ROS domain of the node and the fuzzer (default: a free one in "
                        "1..101, claimed as the tests claim theirs, other than this shell's)")
    parser.add_argument("--warmup-s", type=float, default=WARMUP_S,
                        help="valid conversation only before the first bad message (s; default "
                        f"{WARMUP_S:.0f}: the node's input window plus 2 s)")
    parser.add_argument("--clean", action="store_true",
                        help="the valid conversation only: a baseline of the same figures on "
                        "this machine (its N misses the 10,000 goal by design)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.warmup_s <= 600.0:
        parser.error(f"--warmup-s must be within 0..600, got {args.warmup_s}")
    if not 1.0 <= args.seconds <= 3600.0:
        parser.error(f"--seconds must be within 1..3600, got {args.seconds}")
    if args.domain is not None and not 0 <= args.domain <= 232:
        parser.error(f"--domain must be within 0..232, got {args.domain}")
    if args.out is not None and not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: folder {args.out.parent} does not exist")
    return args


def claim_fuzz_domain() -> DomainClaim:
    """A domain no test run, benchmark or shell on this machine holds, nor this shell's (the
    fuzzer must never reach a running robot's node); one line and exit 2 when none is free."""
    try:
        return claim_domain()
    except NoFreeDomain as exc:
        raise SystemExit(f"dualtalk-fuzz: {exc}") from None


def node_command() -> list[str]:
    """The installed `dualtalk_node` console script; the module when it is not on PATH."""
    script = shutil.which("dualtalk_node")
    return [script] if script else [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node"]


class Processes:
    """The node and the probe, in their own processes on `domain`; the probe's lines read."""

    def __init__(self, domain: int, tmp: Path) -> None:
        self.env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1",
                        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
        self.record_path = tmp / "probe.json"
        self.node_log: IO[str] = open(tmp / "node.log", "w+")  # a pipe could fill and stall
        self.probe = subprocess.Popen(
            [sys.executable, "-m", "dualtalk_ros.fuzzing.fuzz_probe", "--out",
             str(self.record_path)], env=self.env, stdout=subprocess.PIPE, text=True)
        self.last_report_s = 0.0
        self.probe_ready = False
        threading.Thread(target=self._read_probe, daemon=True).start()
        self.node = subprocess.Popen(node_command(), env=self.env, stdout=self.node_log,
                                     stderr=subprocess.STDOUT)

    def _read_probe(self) -> None:
        for line in self.probe.stdout:  # type: ignore[union-attr]
            self.probe_ready = True  # its first line, "ready", follows rclpy's signal set-up
            if line.startswith("diagnostics"):
                self.last_report_s = float(line.split()[1])

    def wait_for_report(self, after_s: float, timeout_s: float) -> bool:
        """Until the node reports on /diagnostics after `after_s`; False if it exits first."""
        deadline = time.monotonic() + timeout_s
        while self.last_report_s <= after_s and time.monotonic() < deadline:
            if self.node.poll() is not None:
                return False
            time.sleep(0.05)
        return self.last_report_s > after_s

    def node_tail(self) -> str:
        self.node_log.seek(0)
        return self.node_log.read()[-3000:]

    def close(self) -> tuple[dict[str, Any], bool]:
        """Stop the probe (its record) and the node (SIGINT; True when it stopped cleanly)."""
        node_clean = stop(self.node, signal.SIGINT) and self.node.returncode == 0
        # SIGINT makes a ready probe write its record; one still importing just ends
        stop(self.probe, signal.SIGINT if self.probe_ready else signal.SIGTERM)
        self.node_log.close()
        record = (json.loads(self.record_path.read_text()) if self.record_path.is_file()
                  else {})
        return record, node_clean


class Publisher:
    """The fuzzer's own rclpy node on `domain`, one publisher per input topic."""

    def __init__(self, domain: int, raw: bool) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("dualtalk_fuzz", context=self.context)
        types: dict[str, Any] = {"self_audio": AudioChunk, "partner_audio": AudioChunk,
                                 "partner_face": FaceCoefficients}
        self.pubs = {k: self.node.create_publisher(t, TOPICS[k], SENSOR)
                     for k, t in types.items()}
        if raw:
            from audio_common_msgs.msg import AudioData, AudioDataStamped
            for kind in hostile.RAW_KINDS:
                self.pubs[kind] = self.node.create_publisher(AudioData, TOPICS[kind], SENSOR)
                self.pubs[kind + "_stamped"] = self.node.create_publisher(
                    AudioDataStamped, TOPICS[kind] + "_stamped", SENSOR)

    def now_s(self) -> float:
        """ROS time of the fuzzer's node: the system clock, as the node under test reads it
        (also the clock of the probe's receive times, time.time())."""
        return self.node.get_clock().now().nanoseconds * 1e-9

    def wait_matched(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while any(p.get_subscription_count() == 0 for p in self.pubs.values()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def publish(self, planned: hostile.Planned) -> None:
        stamped = planned.kind.endswith("_raw") and hasattr(planned.msg, "header")
        self.pubs[planned.kind + ("_stamped" if stamped else "")].publish(planned.msg)

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class Stream:
    """The run's messages: the valid conversation from the first tick, the hostile half only
    after `warmup_s`; every message counted into `sent` and published."""

    def __init__(self, pub: Publisher, seed: int, warmup_s: float, sent: Accounting,
                 clean: bool = False) -> None:
        """`clean`: the valid conversation only, without its gaps, all along (a baseline)."""
        self.pub, self.sent, self.clean = pub, sent, clean
        rng = np.random.default_rng(seed)
        self.start_s = self.last_s = pub.now_s()
        self.fuzz_s = self.start_s + warmup_s
        self.conversation = hostile.Conversation(rng, self.start_s)
        self.bad = hostile.Hostile(rng, BAD_PER_S, raw="self_audio_raw" in pub.pubs)

    def tick(self) -> float:
        """Publish what is due now, stamped from ROS time; returns now."""
        now = self.pub.now_s()
        dt, self.last_s = now - self.last_s, now
        warm = now < self.fuzz_s
        quiet = warm or self.clean
        due = self.conversation.due(now, 0.0 if quiet else dt)  # dt 0: no gaps
        if not quiet:
            due += self.bad.due(now, dt, self.conversation)
        for planned in due:
            self.sent.add(planned.kind, planned.label,
                          invalid_reason(planned.kind, planned.msg, now), warmup=warm)
            if planned.label in hostile.HEAVY:
                self.sent.notable.append((now, planned.label))
            self.pub.publish(planned)
        self.sent.notable += self.conversation.pauses
        self.conversation.pauses.clear()
        return now


def publish_for(stream: Stream, procs: Processes, seconds: float
                ) -> tuple[Window, dict[str, Any]]:
    """Warm-up, then the hostile stream for `seconds` (either ends early if the node exits):
    the run's window, and its gaps, bursts and the node's RSS (MiB) at the warm-up's end and
    every second."""
    pid, sent = procs.node.pid, stream.sent
    while stream.tick() < stream.fuzz_s and procs.node.poll() is None:
        time.sleep(TICK_S)
    rss = [round(rss_mib(pid), 1)]
    end_s = stream.fuzz_s + seconds
    with tqdm(total=round(seconds), unit="s", desc="fuzz", file=sys.stderr,
              mininterval=1.0) as bar:
        while (now := stream.tick()) < end_s and procs.node.poll() is None:
            if int(now - stream.fuzz_s) > bar.n:  # once a second
                bar.update(int(now - stream.fuzz_s) - bar.n)
                bar.set_postfix(messages=sent.messages, refresh=False)
                rss.append(round(rss_mib(pid), 1))
            time.sleep(max(0.0, TICK_S - (time.time() - now)))
    end = time.time()
    window = Window(stream.fuzz_s, end, end + SETTLE_S, warmup_s=stream.start_s)
    return window, {"gaps": stream.conversation.gaps, "holes": stream.conversation.holes,
                    "bursts": stream.bad.bursts, "rss_mib_per_s": rss}


def run_fuzz(seconds: float, seed: int, domain: int, warmup_s: float = WARMUP_S,
             clean: bool = False) -> dict[str, Any]:
    """One whole run: start, warm up, fuzz, settle, stop; every figure (see fuzz_report).
    `clean`: the valid conversation only (the baseline the hostile figures compare with)."""
    raw = hostile.audio_common_available()
    sent = Accounting()
    events: dict[str, Any] = {"gaps": 0, "holes": 0, "bursts": 0,
                              "rss_mib_per_s": [float("nan")]}
    with tempfile.TemporaryDirectory(prefix="dualtalk-fuzz-") as tmp:
        procs, pub = Processes(domain, Path(tmp)), None
        try:
            pub = Publisher(domain, raw)
            started = procs.wait_for_report(0.0, START_TIMEOUT_S)
            if started and not pub.wait_matched(MATCH_TIMEOUT_S):
                print("dualtalk-fuzz: the node's subscriptions never matched ours",
                      file=sys.stderr)
            now = time.time()
            window = Window(now, now, now, warmup_s=now)
            if started:
                stream = Stream(pub, seed, warmup_s, sent, clean)
                window, events = publish_for(stream, procs, seconds)
                procs.wait_for_report(window.settled_s, 3 * SETTLE_S)
            rss_end = rss_mib(procs.node.pid)
            exited = procs.node.poll() is not None
            if exited:
                print(f"dualtalk-fuzz: the node exited (status {procs.node.returncode}); its "
                      f"log ends:\n{procs.node_tail()}", file=sys.stderr)
        finally:
            if pub is not None:
                pub.close()
            record, node_clean = procs.close()
    # a node that never reported within START_TIMEOUT_S is as dead as one that exited
    report = build_report(sent, record, window, (events["rss_mib_per_s"][0], rss_end),
                          exited or not started)
    report.update(seconds=seconds, seed=seed, domain=domain, audio_common=raw, clean=clean,
                  node_exited=exited, node_started=started, node_stopped_cleanly=node_clean,
                  node_command=node_command(), bad_per_s=BAD_PER_S, **events)
    return report


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    claim = None if args.domain is not None else claim_fuzz_domain()
    try:
        domain = args.domain if claim is None else claim.domain
        report = run_fuzz(args.seconds, args.seed, domain, args.warmup_s, args.clean)
    finally:
        if claim is not None:
            claim.release()
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1, allow_nan=True) + "\n")
    print(report["line"], flush=True)
    sys.exit(0 if all(report["goals"].values()) else 1)


if __name__ == "__main__":
    main()
