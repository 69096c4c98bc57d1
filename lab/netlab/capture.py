"""tshark as a wire-format oracle: capture BGP on a veth inside a namespace, then count
UPDATEs, malformed packets and expert warnings."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NetlabError
from .ns import Lab, Namespace, run
from .util import wait_until, which_or_fail


@dataclass
class ExpertItem:
    frame: int
    severity: str
    group: str
    protocol: str
    message: str
    stream: int | None = None


@dataclass
class CaptureReport:
    packets: int
    bgp_messages: int
    updates: int
    malformed: int
    expert_warnings: list[ExpertItem] = field(default_factory=list)   # those that count
    ignored_warnings: list[ExpertItem] = field(default_factory=list)  # transport noise, see _ignorable
    bgp_types: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.malformed == 0 and not self.expert_warnings

    def summary(self) -> str:
        lines = [f"packets={self.packets} bgp_messages={self.bgp_messages} updates={self.updates} "
                 f"malformed={self.malformed} warnings={len(self.expert_warnings)} "
                 f"ignored={len(self.ignored_warnings)}"]
        for w in self.expert_warnings:
            lines.append(f"  COUNTED frame {w.frame}: [{w.severity}/{w.group}] {w.protocol}: {w.message}")
        for w in self.ignored_warnings:
            lines.append(f"  ignored frame {w.frame}: [{w.severity}/{w.group}] {w.protocol}: {w.message}")
        return "\n".join(lines)


class Capture:
    """``tshark -i IFACE -f 'tcp port 179' -w FILE`` inside ``ns``. Use as a context manager or
    ``start()``/``stop()``; ``report()`` analyses the file."""

    def __init__(self, lab: Lab, ns: Namespace, iface: str, name: str = "capture", bpf: str = "tcp port 179"):
        self.tshark = which_or_fail("tshark")
        self.lab, self.ns, self.iface, self.name, self.bpf = lab, ns, iface, name, bpf
        self.file = lab.path(f"{name}.pcapng")
        self.proc = None

    def start(self) -> Capture:
        argv = [self.tshark, "-n", "-i", self.iface, "-f", self.bpf, "-w", str(self.file)]
        self.proc = self.lab.spawn(self.ns, argv, name=self.name)
        wait_until(lambda: (self.proc.ensure_alive(), "Capturing on" in self.proc.log_text())[1], 15,
                   f"tshark capturing on {self.iface}", describe=self.proc.log_tail)
        return self

    def stop(self, settle: float = 1.0) -> Path:
        """Stop capturing. dumpcap (libpcap, TPACKET_V3) hands packets over in blocks on a timer,
        and SIGINT does not drain the kernel ring: without ``settle`` seconds first, the packets of
        the last moments (or of a whole short test) are lost."""
        if self.proc and self.proc.alive():
            time.sleep(settle)
            self.proc.stop(timeout=10, sig=signal.SIGINT)
        return self.file

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def report(self) -> CaptureReport:
        return analyse(self.file, tshark=self.tshark)

    def frames(self, display_filter: str, *fields: str) -> list[list[str]]:
        """Frames matching a display filter, as lists of the requested field values
        (multiple occurrences joined by ","); with no fields, [frame.number]."""
        return frames(self.file, display_filter, *fields, tshark=self.tshark)

    def count(self, display_filter: str) -> int:
        return len(self.frames(display_filter))


def _ignorable(item: ExpertItem, bgp_streams: set[int], notified: dict[int, int]) -> bool:
    """Transport noise that says nothing about BGP: a TCP RST on a connection that never carried a
    BGP message (a SYN refused because the peer was not listening yet), or one that follows a
    NOTIFICATION on the same connection (the session was closed properly; the RST only says the
    closing socket still had unread data). A RST that aborts a BGP session without any
    NOTIFICATION counts: RFC 4271 closes sessions with a NOTIFICATION (collision resolution included)."""
    if item.protocol != "tcp" or item.message != "Connection reset (RST)" or item.stream is None:
        return False
    if item.stream not in bgp_streams:
        return True
    first_note = notified.get(item.stream)
    return first_note is not None and first_note < item.frame


def analyse(file: Path | str, tshark: str | None = None) -> CaptureReport:
    tshark = tshark or which_or_fail("tshark")
    if not Path(file).exists():
        raise NetlabError(f"capture file {file} missing")
    # 1) the counts, the io,stat way (one interval covering the whole capture)
    cp = run([tshark, "-n", "-r", str(file), "-q", "-z",
              "io,stat,0,frame,bgp,bgp.type==2,_ws.malformed,_ws.expert.severity>=warning"], timeout=60)
    packets, _bgp_frames, _update_frames, malformed, _warn_frames = _parse_io_stat(cp.stdout)
    # 2) every BGP message type (a frame may carry several messages) and the streams with BGP
    cp = run([tshark, "-n", "-r", str(file), "-Y", "bgp", "-T", "fields", "-E", "separator=\t",
              "-E", "occurrence=a", "-E", "aggregator=,",
              "-e", "frame.number", "-e", "tcp.stream", "-e", "bgp.type"],
             timeout=60)
    types: list[int] = []
    bgp_streams = set()
    notified: dict = {}  # stream -> first frame carrying a NOTIFICATION
    for line in cp.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[1].isdigit():
            continue
        frame, stream = int(parts[0]), int(parts[1])
        bgp_streams.add(stream)
        msg_types = [int(t) for t in parts[2].split(",") if t.isdigit()]
        types.extend(msg_types)
        if 3 in msg_types and stream not in notified:
            notified[stream] = frame
    # 3) each expert item of severity >= warning, with the protocol layer that raised it
    items = expert_items(file, tshark)
    counted = [i for i in items if not _ignorable(i, bgp_streams, notified)]
    ignored = [i for i in items if _ignorable(i, bgp_streams, notified)]
    return CaptureReport(packets=packets, bgp_messages=len(types), updates=types.count(2),
                         malformed=malformed,
                         expert_warnings=counted, ignored_warnings=ignored, bgp_types=types)


def frames(file: Path | str, display_filter: str, *fields: str, tshark: str | None = None) -> list[list[str]]:
    tshark = tshark or which_or_fail("tshark")
    fields = fields or ("frame.number",)
    argv = [tshark, "-n", "-r", str(file), "-Y", display_filter, "-T", "fields", "-E", "separator=\t",
            "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        argv += ["-e", f]
    cp = run(argv, timeout=60)
    return [line.split("\t") for line in cp.stdout.splitlines() if line.strip()]


def _parse_io_stat(text: str):
    """(frames, bgp frames, update frames, malformed frames, warning frames) from the data row,
    e.g. ``| 0.000 <> 3.307 |  25 | 2411 |  9 | 971 |  3 | 397 |  0 | 0 |  1 | 54 |``
    (frames and bytes per column)."""
    for line in text.splitlines():
        if "<>" in line:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            nums = [int(c) for c in cells[1:] if c.isdigit()]
            if len(nums) >= 10:
                f = nums[0::2]
                return f[0], f[1], f[2], f[3], f[4]
    raise NetlabError(f"cannot parse tshark io,stat output:\n{text}")


_SEVERITY = {2097152: "chat", 4194304: "note", 6291456: "warning", 8388608: "error", 1048576: "comment"}


def expert_items(file: Path | str, tshark: str | None = None,
                 min_severity: int = 6291456) -> list[ExpertItem]:
    """Every expert info at ``min_severity`` (default: warning) or above, with the protocol layer
    that raised it (read from PDML, where the item sits inside its protocol's tree)."""
    import xml.etree.ElementTree as ET

    tshark = tshark or which_or_fail("tshark")
    cp = run([tshark, "-n", "-r", str(file), "-Y", f"_ws.expert.severity >= {min_severity}", "-T", "pdml"],
             timeout=120)
    out: list[ExpertItem] = []
    root = ET.fromstring(cp.stdout)
    for pkt in root.iter("packet"):
        frame, stream = 0, None
        for proto in pkt.findall("proto"):
            pname = proto.get("name", "")
            if pname == "geninfo":
                for f in proto.iter("field"):
                    if f.get("name") == "num":
                        frame = int(f.get("show", "0"))
            if pname == "tcp":
                for f in proto.iter("field"):
                    if f.get("name") == "tcp.stream":
                        stream = int(f.get("show"))
            for f in proto.iter("field"):
                if f.get("name") != "_ws.expert":
                    continue
                sub = {c.get("name"): c.get("show") for c in f.iter("field")}
                sev = int(sub.get("_ws.expert.severity") or 0)
                if sev < min_severity:
                    continue
                grp = _GRP.get(sub.get("_ws.expert.group", ""), sub.get("_ws.expert.group", ""))
                out.append(ExpertItem(frame, _SEVERITY.get(sev, str(sev)), grp, pname,
                                      sub.get("_ws.expert.message") or f.get("showname", ""), stream))
        for proto in pkt.findall("proto"):
            if proto.get("name") == "_ws.malformed":
                out.append(ExpertItem(frame, "error", "malformed", "_ws.malformed",
                                      proto.get("showname", "malformed"),
                                      stream))
    return out


_GRP = {"16777216": "checksum", "33554432": "sequence", "50331648": "response-code",
        "67108864": "request-code",
        "83886080": "undecoded", "100663296": "reassemble", "117440512": "malformed", "134217728": "debug",
        "150994944": "protocol", "167772160": "security", "184549376": "comments", "201326592": "decryption",
        "218103808": "assumption", "234881024": "deprecated"}
