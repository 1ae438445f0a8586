"""Table-driven differential runner: run one case against a :class:`Target`, normalise what
must differ between two independent clusters, and render the comparison table.

Normalisation rules (each one replaces an exact, known value with a label; nothing is
matched by "any number"):

* endpoints ``127.0.0.1:PORT`` and peer URLs of the members -> ``EP_<role>`` / ``PEER_<role>``
  where the role is taken when the case starts: ``L`` (the leader), ``F1``, ``F2`` (followers in
  member order); peer URLs of members added by a case -> ``PEER_NEW<i>``;
* member names ``n1..n3`` where they appear as names (``, n2,`` in member list, ``n2=http`` in
  ETCD_INITIAL_CLUSTER) -> ``NAME_<role>``;
* member ids (``%x``, ``%016x`` and decimal) -> ``ID_<role>``; ids of members added by a case
  -> ``ID_NEW<i>``; the cluster id -> ``CLUSTER_ID``;
* lease ids, learned from ``lease ... granted`` / ``"ID":`` in the case's own output or from
  ``{lease...}`` variables -> ``LEASE<i>`` in order of first appearance (hex, padded hex and
  decimal forms); lock / election keys ``name/<hex>`` are lease ids too;
* revisions: JSON fields ``revision``, ``create_revision``, ``mod_revision``,
  ``compact_revision``, the line ``compacted revision N``, ``progress notify: N`` and
  ``ETCD_LOCK_REV=N`` -> ``r+d`` / ``r-d`` relative to the store revision when the case
  started (so a case must produce the same revision *deltas* on both sides);
* ``raft_term``/``raftTerm`` -> ``T``, ``raftIndex``/``raftAppliedIndex`` (and the matching
  columns of ``endpoint status``) -> ``IDX``, ``dbSize``/``dbSizeInUse`` and ``NN kB`` -> ``SIZE``,
  server version strings ``3.x.y`` in status output -> ``VERSION``;
* hashes in ``endpoint hashkv`` -> ``HASH<i>`` in order of first appearance (so "every member
  has the same hash" is still compared);
* ``took = 1.2ms`` -> ``took = DURATION``; a lease's ``remaining(Ns)`` within 5 s of its
  granted TTL -> ``remaining(~TTL)``; its ``attached keys([...])`` sorted (etcd lists them
  in Go map order, which is random);
* the Go client's JSON log lines on stderr (``{"level":..., "ts":..., "msg":...}``) ->
  ``[client <level>] <msg> (<error>)`` without timestamp, caller, client UUID or attempt;
  the one it logs for the call it was making when the test interrupts it (``Canceled desc =
  context canceled``) is dropped;
* lists ordered by member id (``member list`` rows, ``"members"`` in JSON, the entries of
  ``ETCD_INITIAL_CLUSTER``) are sorted after labelling: ids differ, so their order does;
  the ``member-list`` cases check on the raw output that rows are in ascending id order;
* the target's scratch directory -> ``ROOT``.

Outputs are compared as ``stdout``, then ``stderr`` lines prefixed ``! ``, then
``(exit N)`` when the exit code is not 0.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.compat.clusters import Node, Target


@dataclass(frozen=True)
class Step:
    """One etcdctl invocation. ``args`` and ``stdin`` may use ``{r}``, ``{r+N}``, ``{r-N}``
    (the case's base revision) and ``{name}`` (a variable captured by an earlier step);
    ``on`` picks the endpoints: ``all``, ``leader``, ``follower`` or ``n1``..``n3``
    (``all`` with ``-w json`` means the leader: JSON shows which member answered)."""

    args: tuple[str, ...]
    stdin: str | None = None
    on: str = "all"
    capture: str | None = None  # regex with named groups, stored as variables
    timeout: float = 10.0


def sh(*args: str, stdin: str | None = None, on: str = "all", capture: str | None = None,
       timeout: float = 10.0) -> Step:
    return Step(tuple(args), stdin, on, capture, timeout)


Scenario = Callable[["Run"], str]


@dataclass(frozen=True)
class Case:
    """A row of the table: setup steps (their outputs are compared too, as a prefix), then
    either one etcdctl step or a scenario function that returns the text to compare."""

    id: str
    cmd: Step | Scenario
    setup: tuple[Step, ...] = ()
    sort_lines: bool = False  # for outputs whose line order is not defined (concurrency)
    title: str = ""

    @property
    def label(self) -> str:
        if self.title:
            return self.title
        if isinstance(self.cmd, Step):
            return " ".join(self.cmd.args)
        return self.id


_VAR = re.compile(r"\{(\w+)(?:([+-])(\d+))?\}")


@dataclass
class Run:
    """One case being run on one target: variables, roles and the raw transcript."""

    target: Target
    base_rev: int = 0
    vars: dict[str, str] = field(default_factory=dict)
    roles: dict[str, Node] = field(default_factory=dict)  # "L", "F1", "F2" -> node
    leases: list[int] = field(default_factory=list)
    new_members: list[int] = field(default_factory=list)
    new_client_urls: list[str] = field(default_factory=list)

    def fill(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name, sign, num = m.group(1), m.group(2), m.group(3)
            if name == "r":
                base = self.base_rev
            else:
                if name not in self.vars:
                    return m.group(0)
                if not sign:
                    return self.vars[name]
                base = int(self.vars[name])
            delta = int(num or 0)
            return str(base + delta if sign != "-" else base - delta)
        return _VAR.sub(sub, text)

    def endpoints_for(self, on: str) -> str:
        if on == "all":
            return self.target.endpoints
        if on == "leader":
            return self.roles["L"].endpoint
        if on == "follower":
            return self.roles["F1"].endpoint
        return next(n.endpoint for n in self.target.nodes if n.name == on)

    def exec(self, step: Step) -> subprocess.CompletedProcess[str]:
        args = [self.fill(a) for a in step.args]
        stdin = self.fill(step.stdin) if step.stdin is not None else None
        on = step.on
        if on == "all" and "json" in args:
            # JSON shows the answering member (header.member_id); with every endpoint the
            # client picks one at random, so JSON steps ask the leader unless told otherwise
            on = "leader"
        p = self.target.etcdctl(args, stdin=stdin, endpoints=self.endpoints_for(on),
                                timeout=step.timeout)
        self.learn(p.stdout + p.stderr)
        if step.capture:
            m = re.search(step.capture, p.stdout + p.stderr)
            if m:
                self.vars.update(m.groupdict())
        return p

    def step(self, step: Step) -> str:
        return transcript(self.exec(step))

    def learn(self, text: str) -> None:
        """Record lease and new member ids that appear in an output."""
        for m in re.finditer(r"lease ([0-9a-f]+) (?:granted|keepalived)", text):
            self.lease(int(m.group(1), 16))
        for m in re.finditer(r"Member +([0-9a-f]+) added", text):
            mid = int(m.group(1), 16)
            if mid not in self.new_members:
                self.new_members.append(mid)

    def lease(self, lid: int) -> None:
        if lid not in self.leases:
            self.leases.append(lid)


def transcript(p: subprocess.CompletedProcess[str]) -> str:
    out = p.stdout
    if out and not out.endswith("\n"):
        out += "\n"
    err = "".join(f"! {line}\n" for line in p.stderr.splitlines())
    code = f"(exit {p.returncode})\n" if p.returncode != 0 else ""
    return out + err + code


def setup_run(target: Target) -> Run:
    """Roles and base revision at the start of a case."""
    run = Run(target)
    st = target.status()
    by_ep = {n.endpoint: n for n in target.nodes}
    for ep, s in st.items():
        by_ep[ep].member_id = s["member_id"]
    lead = target.leader()
    run.roles["L"] = lead
    followers = [n for n in target.nodes if n is not lead]
    for i, n in enumerate(followers, 1):
        run.roles[f"F{i}"] = n
    p = target.etcdctl(["get", "compat-base", "-w", "json"], endpoints=lead.endpoint)
    run.base_rev = int(json.loads(p.stdout)["header"]["revision"])
    run.vars["cluster_id"] = str(next(iter(st.values()))["cluster_id"]) if st else "0"
    for role, n in run.roles.items():
        run.vars[f"id_{role}"] = f"{n.member_id:x}"
    return run


def run_case(case: Case, target: Target) -> str:
    run = setup_run(target)
    parts = []
    for s in case.setup:
        parts.append(run.step(s))
    if isinstance(case.cmd, Step):
        parts.append(run.step(case.cmd))
    else:
        parts.append(case.cmd(run))
    setup_text = "".join(f"[setup] {line}\n" for p in parts[:-1] for line in p.splitlines())
    text = setup_text + parts[-1]
    out = normalise(text, run)
    if case.sort_lines:
        out = "\n".join(sorted(out.splitlines())) + "\n"
    return out


# ---------------------------------------------------------------------------- normaliser

_CLIENT_LOG = re.compile(r'^(?P<pre>(?:\[setup\] )?(?:! )?)(?P<json>\{"level":.*\})\s*$')
_REV_FIELDS = re.compile(r'"(revision|create_revision|mod_revision|compact_revision)":(-?\d+)')
_REV_TEXT = re.compile(r"(compacted revision |progress notify: |ETCD_LOCK_REV=)(\d+)")
_STATUS_ROW = re.compile(
    r"^(?P<pre>.*?EP_\w+, ID_\w+, )(?P<ver>[^,]+), (?P<db>[^,]+), (?P<lead>true|false), "
    r"(?P<learner>true|false), (?P<term>\d+), (?P<idx>\d+), (?P<applied>\d+), (?P<err>.*)$")
_HASH_ROW = re.compile(r"^(?P<pre>.*?EP_\w+, )(?P<hash>\d+)$")


def _client_log(line: str) -> str:
    m = _CLIENT_LOG.match(line)
    if not m:
        return line
    try:
        rec = json.loads(m.group("json"))
    except json.JSONDecodeError:
        return line
    if not isinstance(rec, dict) or "msg" not in rec:
        return line
    extra = f" ({rec['error']})" if "error" in rec else ""
    return f"{m.group('pre')}[client {rec.get('level', '?')}] {rec['msg']}{extra}"


def _id_forms(value: int) -> list[str]:
    # %16x pads with spaces (etcdctl "Member %16x added to cluster %16x"), %016x with zeros
    return [f"{value:16x}", f"{value:016x}", f"{value:x}", str(value)]


def normalise(text: str, run: Run) -> str:
    text = "\n".join(_client_log(line) for line in text.splitlines())
    text = text.replace(str(run.target.root), "ROOT")

    # peer URLs and endpoints by role (peer URLs first: they contain 127.0.0.1:PORT too)
    for role, n in run.roles.items():
        text = re.sub(re.escape(n.peer_url) + r"(?!\d)", f"PEER_{role}", text)
    for i, url in enumerate(run.target.spare_peer_urls, 1):
        text = re.sub(re.escape(url) + r"(?!\d)", f"PEER_NEW{i}", text)
    for role, n in run.roles.items():
        text = re.sub(r"(?:http://)?" + re.escape(n.endpoint) + r"(?!\d)", f"EP_{role}", text)
    for role, n in run.roles.items():
        text = re.sub(rf"(?<=, ){n.name}(?=, )|\b{n.name}(?==PEER_)|(?<=\"name\":\"){n.name}(?=\")",
                      f"NAME_{role}", text)
    for i, url in enumerate(run.new_client_urls, 1):
        text = re.sub(re.escape(url) + r"(?!\d)", f"EP_NEW{i}", text)

    # ids: members, new members, the cluster, leases
    labels: list[tuple[int, str]] = [(n.member_id, f"ID_{role}") for role, n in run.roles.items()]
    labels += [(mid, f"ID_NEW{i}") for i, mid in enumerate(run.new_members, 1)]
    labels.append((int(run.vars.get("cluster_id", "0")), "CLUSTER_ID"))
    for m in re.finditer(r'"ID":"?(\d+)', text):
        run.lease(int(m.group(1)))
    for name, val in run.vars.items():
        if name.startswith("lease") and re.fullmatch(r"[0-9a-f]+", val):
            run.lease(int(val, 16))
    member_ids = {mid for mid, _ in labels}
    labels += [(lid, f"LEASE{i}") for i, lid in
               enumerate((x for x in run.leases if x not in member_ids), 1)]
    for value, label in labels:
        if value == 0:
            continue
        for form in _id_forms(value):
            # a space-padded %16x only after a word ("Member %16x added to cluster %16x"),
            # never eating the ", " separator of a table row
            before = r"(?<=[A-Za-z] )" if form.startswith(" ") else r"(?<![0-9A-Za-z_])"
            text = re.sub(rf"{before}{form}(?![0-9A-Za-z_])", label, text)
    # lock and election keys are "<name>/<lease id in %x>"; leases granted by etcdctl
    # lock/elect themselves are never printed, so label them by first appearance here
    for m in re.finditer(r"(?<=/)([0-9a-f]{8,16})\b", text):
        run.lease(int(m.group(1), 16))
    for i, lid in enumerate((x for x in run.leases if x not in member_ids), 1):
        for form in _id_forms(lid):
            text = re.sub(rf"(?<![0-9A-Za-z_]){form}(?![0-9A-Za-z_])", f"LEASE{i}", text)

    # revisions relative to the case's base revision
    def rel(v: int) -> str:
        d = v - run.base_rev
        return f"r+{d}" if d >= 0 else f"r{d}"
    text = _REV_FIELDS.sub(lambda m: f'"{m.group(1)}":"{rel(int(m.group(2)))}"', text)
    text = _REV_TEXT.sub(lambda m: m.group(1) + rel(int(m.group(2))), text)

    # raft positions, sizes, versions, durations
    text = re.sub(r'"(raft_term|raftTerm)":\d+', r'"\1":"T"', text)
    text = re.sub(r'"(raftIndex|raftAppliedIndex)":\d+', r'"\1":"IDX"', text)
    text = re.sub(r'"(dbSize|dbSizeInUse)":\d+', r'"\1":"SIZE"', text)
    text = re.sub(r'"version":"3\.\d+\.\d+"', '"version":"VERSION"', text)
    text = re.sub(r"took = [0-9.]+[µnm]?s", "took = DURATION", text)

    hashes: list[str] = []
    lines = []
    for line in text.splitlines():
        st = _STATUS_ROW.match(line)
        if st:
            line = (f"{st['pre']}VERSION, SIZE, {st['lead']}, {st['learner']}, T, IDX, IDX, "
                    f"{st['err']}")
        hk = _HASH_ROW.match(line)
        if hk:
            if hk["hash"] not in hashes:
                hashes.append(hk["hash"])
            line = f"{hk['pre']}HASH{hashes.index(hk['hash']) + 1}"
        lines.append(line.rstrip())

    # lists ordered by member id (ids differ between the clusters): compare as sets;
    # the member-list cases check the id order itself on the raw output
    lines = _sort_member_rows([_sort_by_member(line) for line in lines])
    # the Go client logs the call it was making when we interrupt it (SIGINT): ours, not
    # the server's
    lines = [line for line in lines if not line.endswith(
        "retrying of unary invoker failed (rpc error: code = Canceled desc = context canceled)")]

    # remaining TTL close to the granted TTL
    def ttl(m: re.Match[str]) -> str:
        granted, remaining = int(m.group(1)), int(m.group(2))
        rem = "~TTL" if 0 <= granted - remaining <= 5 else f"{remaining}s"
        return f"granted with TTL({granted}s), remaining({rem})"
    text = "\n".join(lines)
    text = re.sub(r"granted with TTL\((\d+)s\), remaining\((-?\d+)s\)", ttl, text)
    # etcd lists a lease's attached keys in Go map order (random): compare them as a set
    text = re.sub(r"attached keys\(\[([^\]]*)\]\)",
                  lambda m: f"attached keys([{' '.join(sorted(m.group(1).split()))}])", text)
    return text + "\n" if text else ""


_MEMBER_ROW = re.compile(r"^ID_\w+, (?:started|unstarted), ")


def _sort_member_rows(lines: list[str]) -> list[str]:
    """Sort each run of consecutive ``member list`` rows."""
    out: list[str] = []
    block: list[str] = []
    for line in [*lines, ""]:
        if _MEMBER_ROW.match(line):
            block.append(line)
            continue
        out.extend(sorted(block))
        block = []
        out.append(line)
    return out[:-1]


def _sort_by_member(line: str) -> str:
    m = re.match(r'^(.*ETCD_INITIAL_CLUSTER=")([^"]*)(".*)$', line)
    if m:
        return m.group(1) + ",".join(sorted(m.group(2).split(","))) + m.group(3)
    if '"members":[' in line and line.startswith("{"):
        try:
            doc = json.loads(re.sub(r'(?<=[:\[,])([A-Z][A-Z_0-9]+)(?=[,}\]])', r'"@\1"', line))
        except json.JSONDecodeError:
            return line
        doc["members"].sort(key=lambda mem: str(mem.get("ID", "")))
        return re.sub(r'"@([A-Z][A-Z_0-9]+)"', r"\1", json.dumps(doc, separators=(",", ":")))
    return line


def ids_in_order(raw: str) -> bool:
    """Whether the member ids in a raw ``member list`` output are in ascending order."""
    if raw.lstrip().startswith("{"):
        ids = [int(m) for m in re.findall(r'"ID":(\d+)', raw.split('"members"', 1)[-1])]
    else:
        ids = [int(line.split(",")[0], 16) for line in raw.splitlines()
               if re.match(r"^[0-9a-f]+, ", line)]
    return ids == sorted(ids)


# ---------------------------------------------------------------------------- table

def _cell(text: str, width: int) -> str:
    flat = " ⏎ ".join(line for line in text.splitlines() if line)
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def table_row(case_id: str, command: str, etcd: str, raftkv: str, verdict: str) -> str:
    return (f"| {case_id:<22.22} | {_cell(command, 34):<34} | {_cell(etcd, 44):<44} | "
            f"{_cell(raftkv, 44):<44} | {verdict:<7} |")


def table_header() -> str:
    head = table_row("case", "command", "etcd", "raftkv", "same?")
    return head + "\n" + re.sub(r"[^|]", "-", head)


def side_by_side(etcd: str, raftkv: str) -> str:
    return f"--- etcd ---\n{etcd}--- raftkv ---\n{raftkv}"
