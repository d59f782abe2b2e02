"""rosbag2 files through `rosbags` (pure Python): the typestore, writing and checked reading.

The typestore is Kilted's standard messages plus `dualtalk_msgs` registered from the `.msg`
files' text, so the definitions embedded in a bag (and their RIHS01 hashes) are the ones a full
ROS 2 install generates: `ros2 bag info` and `ros2 bag play` read our bags without our package
on their path. Reading takes the definitions a bag carries, so bags written by other tools work.

A file that is not a readable bag (truncated, corrupted, another format) raises `BagFileError`
with one line naming it; one message that does not deserialize is skipped and reported with its
topic and log time (`TopicData.corrupt`), so one bad record costs one message, not the bag.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import apsw
import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys.store import Typestore

from dualtalk_core.units import float_to_s16
from dualtalk_ros.bridge.messages import NS, s_to_sec_nanosec
from dualtalk_ros.bridge.share_files import msg_dir

log = logging.getLogger(__name__)

AUDIO = "dualtalk_msgs/msg/AudioChunk"
FACE = "dualtalk_msgs/msg/FaceCoefficients"
POSE = "geometry_msgs/msg/PoseStamped"
CLOCK = "rosgraph_msgs/msg/Clock"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION: Literal[9] = 9  # the metadata version Jazzy and Kilted write


class BagTopicError(ValueError):
    """A bag lacks a topic or holds it with another type; the message names both."""


class BagFileError(ValueError):
    """A path that is not a readable rosbag2 (missing, truncated, corrupted, another format)."""


# What rosbags raises for a file it cannot read (apsw: its sqlite3 storage), and for one record
# it cannot deserialize (generated CDR readers index and unpack raw bytes: garbage gives these).
_FILE_ERRORS = (AnyReaderError, ReaderError, OSError, apsw.Error)
_RECORD_ERRORS = (AnyReaderError, ValueError, IndexError, struct.error)


@functools.lru_cache(maxsize=1)
def typestore() -> Typestore:
    """Kilted's types + dualtalk_msgs (cached: registering parses the .msg text each time)."""
    from rosbags.typesys import get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    for path in sorted(msg_dir().glob("*.msg")):
        store.register(get_types_from_msg(path.read_text(), f"dualtalk_msgs/msg/{path.stem}"))
    return store


# ------------------------------------------------------------------ message builders
def _header(t: float, frame_id: str) -> Any:
    types = typestore().types
    sec, nanosec = s_to_sec_nanosec(t)
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)


def audio_msg(samples: np.ndarray, sample_rate: int, t: float, frame_id: str,
              encoding: str = "S16LE") -> Any:
    """(N,) float mono samples (+-1 full scale) -> an AudioChunk stamped at its first sample."""
    samples = np.asarray(samples, dtype=np.float32)
    if encoding == "S16LE":
        pcm = float_to_s16(samples)
    elif encoding == "F32LE":
        pcm = samples.astype("<f4")
    else:
        raise ValueError(f"encoding must be S16LE or F32LE, got {encoding!r}")
    data = np.frombuffer(pcm.tobytes(), dtype=np.uint8)
    return typestore().types[AUDIO](header=_header(t, frame_id), sample_rate=int(sample_rate),
                                    channels=1, encoding=encoding, data=data)


def face_msg(values: np.ndarray, names: Iterable[str], rig: str, t: float,
             frame_id: str) -> Any:
    """(C,) values named `names` -> FaceCoefficients stamped `t`."""
    return typestore().types[FACE](header=_header(t, frame_id), rig=rig, names=list(names),
                                   values=np.asarray(values, dtype=np.float32))


def pose_msg(quaternion: np.ndarray, t: float, frame_id: str) -> Any:
    """(4,) x, y, z, w head rotation -> PoseStamped (position zero) stamped `t`."""
    types = typestore().types
    x, y, z, w = (float(v) for v in quaternion)
    pose = types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
        orientation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
    return types[POSE](header=_header(t, frame_id), pose=pose)


# ------------------------------------------------------------------ writing
class BagWriter:
    """A rosbag2 being written: `add` topics, then `write(topic, log_time_s, msg)`."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise ValueError(f"{self.path} exists: rosbag2 writes a new folder; remove it or "
                             "choose another path")
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        self._conns: dict[str, Any] = {}
        self._types: dict[str, str] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def add(self, topic: str, msgtype: str) -> None:
        """Declare `topic` of `msgtype`; its definition from our typestore goes into the bag."""
        self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        self._types[topic] = msgtype

    def write(self, topic: str, log_time_s: float, msg: Any) -> None:
        raw = typestore().serialize_cdr(msg, self._types[topic])
        self.write_raw(topic, int(round(log_time_s * NS)), raw)

    def write_raw(self, topic: str, log_time_ns: int, raw: bytes | memoryview) -> None:
        self._writer.write(self._conns[topic], int(log_time_ns), raw)


# ------------------------------------------------------------------ reading
@dataclass
class TopicData:
    """One topic of a bag: messages in log-time order (deserialized, and their CDR bytes)."""

    topic: str
    msgtype: str
    log_ns: list[int] = field(default_factory=list)
    msgs: list[Any] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    corrupt: list[tuple[int, str]] = field(default_factory=list)  # (log ns, why) of skipped


def bag_topics(path: str | Path) -> dict[str, str]:
    """{topic: message type} of a bag."""
    with _open(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


@contextlib.contextmanager
def _open(path: str | Path) -> Iterator[AnyReader]:
    """An open reader of the bag at `path`; BagFileError in one line when it is not one."""
    path = Path(path)
    if not path.exists():
        raise BagFileError(f"no bag at {path}")
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except (*_FILE_ERRORS, FileNotFoundError) as err:
        raise BagFileError(f"{path}: not a readable rosbag2 ({_one_line(err)}); expected a bag "
                           "folder with metadata.yaml, or one .mcap or .db3 file") from None
    try:
        yield reader
    finally:
        reader.close()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def read_topics(path: str | Path, wanted: dict[str, str]) -> dict[str, TopicData]:
    """Read `wanted` {topic: expected type}; BagTopicError names every missing or mistyped one.

    Raw CDR bytes are kept so a replay publishes exactly what was recorded. A record that does
    not deserialize is skipped, logged with its topic and log time and listed in `corrupt`; a
    file that breaks off mid-way raises BagFileError naming the last good log time.
    """
    with _open(path) as reader:
        found: dict[str, set[str]] = {}
        for conn in reader.connections:
            found.setdefault(conn.topic, set()).add(conn.msgtype)
        _check_topics(Path(path), wanted, found)
        out = {topic: TopicData(topic, msgtype) for topic, msgtype in wanted.items()}
        conns = [c for c in reader.connections if c.topic in wanted]
        last_ns = None
        try:
            for conn, log_ns, raw in reader.messages(connections=conns):
                _keep(reader, out[conn.topic], int(log_ns), raw)
                last_ns = int(log_ns)
        except _FILE_ERRORS as err:
            where = "before its first message" if last_ns is None else (
                f"after log time {last_ns / NS:.3f} s")
            raise BagFileError(f"{path}: truncated or corrupted {where} "
                               f"({_one_line(err)})") from None
        _check_counts(Path(path), out, conns)
    for data in out.values():
        log.info("%s: %d messages of %s", data.topic, len(data.msgs), data.msgtype)
    return out


def _check_counts(path: Path, out: dict[str, TopicData], conns: list[Any]) -> None:
    """BagFileError when a topic yielded fewer records than the bag's index lists: a damaged
    chunk can end the reader's iteration early without an error."""
    listed: dict[str, int] = {}
    for conn in conns:
        listed[conn.topic] = listed.get(conn.topic, 0) + int(conn.msgcount)
    for topic, data in out.items():
        seen = len(data.msgs) + len(data.corrupt)
        if seen < listed.get(topic, 0):
            last = f"; the last at log time {data.log_ns[-1] / NS:.3f} s" if data.log_ns else ""
            raise BagFileError(f"{path}: truncated or corrupted: {topic} yielded {seen} of the "
                               f"{listed[topic]} messages the bag lists{last}")


def _keep(reader: AnyReader, data: TopicData, log_ns: int, raw: bytes | memoryview) -> None:
    """Deserialize one record into `data`, or skip it as corrupted (logged, counted)."""
    try:
        msg = reader.deserialize(raw, data.msgtype)
    except _RECORD_ERRORS as err:
        data.corrupt.append((log_ns, _one_line(err)))
        if len(data.corrupt) <= 5:  # then only counted: a broken bag must not flood the log
            log.warning("%s: corrupted message at log time %.3f s skipped (%s)", data.topic,
                        log_ns / NS, _one_line(err))
        return
    data.log_ns.append(log_ns)
    data.msgs.append(msg)
    data.raw.append(bytes(raw))


def _check_topics(path: Path, wanted: dict[str, str], found: dict[str, set[str]]) -> None:
    problems = []
    for topic, msgtype in wanted.items():
        if topic not in found:
            problems.append(f"topic {topic} ({msgtype}) is missing")
        elif found[topic] != {msgtype}:
            problems.append(f"topic {topic} has type {', '.join(sorted(found[topic]))}, "
                            f"expected {msgtype}")
    if problems:
        listing = ", ".join(f"{t} [{', '.join(sorted(ts))}]" for t, ts in sorted(found.items()))
        raise BagTopicError(f"{path}: " + "; ".join(problems) + f". The bag has: "
                            f"{listing or 'no topics'}. Name other topics with the --*-topic "
                            "options.")
