#!/usr/bin/env python3
"""bench/bench.py: the measurements of bench/run.sh (run that, not this).

Expects a running throwaway cluster (PGHOST/PGPORT/PGUSER in the
environment, superuser) with zendesk_fdw installed, and the mock Zendesk
server started with --rate-limit 0 and the large account.  Prints progress
on stderr and writes the report (markdown) and the raw figures (JSON).
"""
import argparse
import base64
import datetime
import gzip
import http.client
import json
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

STREAMS = ["tickets", "ticket_events", "users", "organizations"]
EPOCH_COLS = {"tickets": {"generated_timestamp"}, "ticket_events": {"timestamp"}}
CLK = os.sysconf("SC_CLK_TCK")
AUTH = "Basic " + base64.b64encode(b"admin@example.com/token:test-token").decode()
DB = "bench"
POSTMASTER = [0]


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------- processes

def cpu_s(pid):
    """utime + stime of a process in seconds, None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def status_kb(pid, keys=("VmHWM", "VmRSS", "RssAnon", "RssShmem")):
    try:
        with open("/proc/%d/status" % pid) as f:
            txt = f.read()
    except OSError:
        return None
    out = {}
    for k in keys:
        m = re.search(r"^%s:\s+(\d+) kB" % k, txt, re.M)
        if m:
            out[k] = int(m.group(1))
    return out


def ppid_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return int(s[s.rindex(")") + 2:].split()[1])


def find_pids(pattern, parent):
    """Processes whose title contains pattern, children of our postmaster
    only (other clusters on the machine may run syncs too)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if pattern in cmd and ppid_of(int(d)) == parent:
            out.append(int(d))
    return out


class Sampler(threading.Thread):
    """Samples the sync worker (found by its process title) every 20 ms:
    peak VmHWM, peak RssAnon (private memory) and its last CPU time."""

    def __init__(self, pattern="zendesk_fdw sync"):
        super().__init__(daemon=True)
        self.pattern = pattern
        self.parent = POSTMASTER[0]
        self.stop = threading.Event()
        self.pids = {}
        self.lock = threading.Lock()

    def run(self):
        n = 0
        while not self.stop.is_set():
            if n % 5 == 0:
                for pid in find_pids(self.pattern, self.parent):
                    self.pids.setdefault(pid, {"VmHWM": 0, "RssAnon": 0, "RssShmem": 0, "cpu": 0.0})
            for pid, p in self.pids.items():
                st = status_kb(pid)
                c = cpu_s(pid)
                if st is None or c is None:
                    continue
                with self.lock:
                    p["VmHWM"] = max(p["VmHWM"], st.get("VmHWM", 0))
                    p["RssAnon"] = max(p["RssAnon"], st.get("RssAnon", 0))
                    p["RssShmem"] = max(p["RssShmem"], st.get("RssShmem", 0))
                    p["cpu"] = c
            n += 1
            time.sleep(0.02)

    def result(self):
        self.stop.set()
        self.join()
        agg = {"VmHWM": 0, "RssAnon": 0, "RssShmem": 0, "cpu": 0.0, "workers": len(self.pids)}
        for p in self.pids.values():
            for k in ("VmHWM", "RssAnon", "RssShmem"):
                agg[k] = max(agg[k], p[k])
            agg["cpu"] += p["cpu"]
        return agg


# ---------------------------------------------------------------- PostgreSQL

def psql(sql, db=None, check=True):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db or DB, "-c", sql],
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("psql failed: %s\n%s" % (sql[:300], r.stderr))
    return r.stdout.strip()


def psql_script(script, db=None):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db or DB],
                       input=script, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("psql script failed:\n%s\n%s" % (script[:500], r.stderr))
    return r.stdout


def proc_stat_cpu(text):
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK


# ---------------------------------------------------------------- the mock

class Mock:
    def __init__(self, url, pid):
        self.url = url.rstrip("/")
        u = urlsplit(self.url)
        self.host, self.port = u.hostname, u.port
        self.pid = pid
        self.conn = None

    def _c(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        return self.conn

    def call(self, method, path, body=None, headers=None, raw=False):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                c = self._c()
                c.request(method, path, body=data, headers=h)
                r = c.getresponse()
                b = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise
        if r.getheader("Content-Encoding") == "gzip":
            b = gzip.decompress(b)
        if raw:
            return r.status, b
        if r.status >= 400:
            raise RuntimeError("mock %s %s -> %d %s" % (method, path, r.status, b[:200]))
        return json.loads(b)

    def requests(self):
        return self.call("GET", "/__mock/requests")

    def clear(self):
        self.call("DELETE", "/__mock/requests")

    def cpu(self):
        return cpu_s(self.pid) if self.pid else None


def page_exports(mock, per_page=1000):
    """Page every export as a plain client would (gzip, keep-alive), parsing
    only the paging fields.  Returns {stream: (requests, seconds)}."""
    out = {}
    h = {"Authorization": AUTH, "Accept-Encoding": "gzip"}
    for res in STREAMS:
        t0 = time.time()
        n = 0
        if res in ("tickets", "users"):
            path = "/api/v2/incremental/%s/cursor.json?start_time=0&per_page=%d" % (res, per_page)
        else:
            extra = "&include=comment_events" if res == "ticket_events" else ""
            path = "/api/v2/incremental/%s.json?start_time=0&per_page=%d%s" % (res, per_page, extra)
        while True:
            st, b = mock.call("GET", path, headers=h, raw=True)
            n += 1
            if st != 200:
                raise RuntimeError("mock answered %d to %s" % (st, path))
            tail = json.loads(b"{" + b[b.rfind(b"]") + 2:])  # the keys after the records
            if tail["end_of_stream"]:
                break
            if res in ("tickets", "users"):
                path = "/api/v2/incremental/%s/cursor.json?cursor=%s&per_page=%d" % (res, tail["after_cursor"], per_page)
            else:
                path = re.sub(r"start_time=\d+", "start_time=%d" % tail["end_time"], path)
        out[res] = (n, time.time() - t0)
    return out


# ---------------------------------------------------------------- COPY floor

def copy_escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def array_literal(v, elem_text):
    parts = []
    for e in v:
        if e is None:
            parts.append("NULL")
        else:
            t = elem_text(e)
            parts.append('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def jdumps(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def iso_epoch(v):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(v)))


def to_copy_field(v, typ, col, res):
    if v is None:
        return "\\N"
    if typ == "jsonb":
        return copy_escape(jdumps(v))
    if typ.endswith("[]"):
        if not isinstance(v, list):
            return "\\N"
        return copy_escape(array_literal(v, lambda e: e if isinstance(e, str) else jdumps(e)))
    if typ.startswith("timestamp"):
        if isinstance(v, (int, float)) or col in EPOCH_COLS.get(res, ()):
            return iso_epoch(v)
        return copy_escape(str(v))
    if typ == "boolean":
        return "t" if v is True or v == "true" else "f"
    if isinstance(v, str):
        return copy_escape(v)
    if isinstance(v, (dict, list)):
        return copy_escape(jdumps(v))
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_copy_file(records, cols, res, path):
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            row = []
            for name, typ in cols:
                v = rec if name == "data" else rec.get(name)
                row.append(to_copy_field(v, typ, name, res))
            f.write("\t".join(row))
            f.write("\n")


def table_columns(schema, table):
    out = psql("SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute "
               "WHERE attrelid = '%s.%s'::regclass AND attnum > 0 AND NOT attisdropped "
               "AND attname <> 'synced_at' ORDER BY attnum" % (schema, table))
    return [tuple(line.split(" ", 1)) for line in out.splitlines()]


# ---------------------------------------------------------------- zendesk_sync

def so_fingerprint():
    """sha1 of the installed zendesk_fdw.so: the install location is shared,
    so a rebuild by someone else during a run must not go unnoticed."""
    import hashlib
    libdir = subprocess.run(["pg_config", "--pkglibdir"], capture_output=True, text=True).stdout.strip()
    try:
        with open(os.path.join(libdir, "zendesk_fdw.so"), "rb") as f:
            return hashlib.sha1(f.read()).hexdigest()[:12]
    except OSError:
        return None


SO_SEEN = []


def check_so(where):
    fp = so_fingerprint()
    if SO_SEEN and fp != SO_SEEN[-1][1]:
        log("WARNING: zendesk_fdw.so changed (%s -> %s) before %s" % (SO_SEEN[-1][1], fp, where))
    SO_SEEN.append((where, fp))


def run_sync(mock, server, streams=None, target_schema=None):
    """Run zendesk_sync(server) and wait; sample the worker meanwhile."""
    args = ["%s" % sql_lit(server)]
    if streams:
        args.append("ARRAY[%s]" % ",".join(sql_lit(s) for s in streams))
    elif target_schema:
        args.append("NULL")
    if target_schema:
        args.append(sql_lit(target_schema))
    sql = ("SELECT stream, status, pages, records, extract(epoch FROM finished_at - started_at), "
           "coalesce(message, '') FROM zendesk_sync(%s)" % ", ".join(args))
    mock.clear()
    psql("CHECKPOINT")
    check_so("zendesk_sync(%s) start" % server)
    wal0 = psql("SELECT pg_current_wal_lsn()")
    sampler = Sampler()
    sampler.start()
    m0 = mock.cpu()
    t0 = time.time()
    out = psql(sql)
    elapsed = time.time() - t0
    m1 = mock.cpu()
    mem = sampler.result()
    wal = int(psql("SELECT pg_current_wal_lsn() - '%s'::pg_lsn" % wal0))
    check_so("zendesk_sync(%s) end" % server)
    rows = []
    for line in out.splitlines():
        s, status, pages, recs, secs, msg = line.split("|", 5)
        rows.append({"stream": s, "status": status, "pages": int(pages), "records": int(recs),
                     "seconds": float(secs or 0), "message": msg})
    reqs = mock.requests()
    api = [r for r in reqs if r["path"].startswith("/api/v2")]
    return {"elapsed": elapsed, "streams": rows, "requests": len(api),
            "status_counts": count_by(api, "status"), "worker": mem,
            "mock_cpu": (m1 - m0) if m0 is not None and m1 is not None else None,
            "wal_bytes": wal, "request_log": api}


def count_by(items, key):
    out = {}
    for it in items:
        out[str(it.get(key))] = out.get(str(it.get(key)), 0) + 1
    return out


def sql_lit(s):
    return "'" + str(s).replace("'", "''") + "'"


# ---------------------------------------------------------------- steps

def step_mock_serving(mock, R):
    log("mock serving: paging every export with a plain client (cold: builds the mock's caches)")
    c0 = mock.cpu()
    cold = page_exports(mock)
    c1 = mock.cpu()
    log("mock serving: again (warm)")
    warm = page_exports(mock)
    c2 = mock.cpu()
    R["mock_serving"] = {
        "cold": {k: {"requests": v[0], "seconds": v[1]} for k, v in cold.items()},
        "warm": {k: {"requests": v[0], "seconds": v[1]} for k, v in warm.items()},
        "cold_mock_cpu": c1 - c0 if c0 is not None else None,
        "warm_mock_cpu": c2 - c1 if c0 is not None else None,
    }
    log("mock serving: cold %.1fs, warm %.1fs" % (sum(v[1] for v in cold.values()),
                                                  sum(v[1] for v in warm.values())))


def setup_db(mock_url):
    psql("DROP DATABASE IF EXISTS %s" % DB, db="postgres")
    psql("CREATE DATABASE %s" % DB, db="postgres")
    psql_script("""
CREATE EXTENSION zendesk_fdw;
CREATE SERVER zendesk FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url %s);
CREATE USER MAPPING FOR CURRENT_USER SERVER zendesk OPTIONS (email 'admin@example.com', api_token 'test-token');
ALTER DATABASE %s SET zendesk_fdw.holdback = 2;
""" % (sql_lit(mock_url), DB))


def step_warm_wal(R, tickets):
    """A fresh cluster has no WAL segments to recycle: the first client to
    write would pay for creating and zero-filling every segment, and the
    later ones reuse them.  Write about as much WAL once, before any measured
    run, so every client starts from the same recycled segments."""
    mb = max(64, tickets * 12 // 1000)  # ~1.2 GB at 100,000 tickets; a sync writes ~0.94 GB
    log("warm-up: %d MB of WAL from a throwaway table, then CHECKPOINT (segments to recycle)" % mb)
    t0 = time.time()
    wal0 = psql("SELECT pg_current_wal_lsn()")
    psql("CREATE TABLE bench_wal_warmup AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, %d) g"
         % (mb * 1000))
    wal = int(psql("SELECT pg_current_wal_lsn() - '%s'::pg_lsn" % wal0))
    psql("DROP TABLE bench_wal_warmup")
    psql("CHECKPOINT")
    segs = int(psql("SELECT count(*) FROM pg_ls_waldir()"))
    R["warmup"] = {"wal_bytes": wal, "seconds": time.time() - t0, "wal_segments_after": segs}
    log("  %d MB of WAL in %.1fs; %d WAL segments in pg_wal" % (wal // 1048576, time.time() - t0, segs))


def step_sync(mock, R):
    log("zendesk_sync from scratch (all streams)")
    r = run_sync(mock, "zendesk")
    R["sync"] = {k: v for k, v in r.items() if k != "request_log"}
    for s in r["streams"]:
        log("  %-14s %-6s %4d pages %7d records %7.1fs  %8.0f rec/s  %s" % (
            s["stream"], s["status"], s["pages"], s["records"], s["seconds"],
            s["records"] / s["seconds"] if s["seconds"] else 0, s["message"]))
    log("  total %.1fs, %d requests, worker VmHWM %d kB (RssAnon peak %d kB), worker CPU %.1fs" % (
        r["elapsed"], r["requests"], r["worker"]["VmHWM"], r["worker"]["RssAnon"], r["worker"]["cpu"]))
    bad = [s for s in r["streams"] if s["status"] != "ok"]
    if bad:
        raise RuntimeError("zendesk_sync failed: %s" % bad)
    counts = {s: int(psql("SELECT count(*) FROM zendesk.%s" % s)) for s in STREAMS}
    R["sync"]["table_rows"] = counts
    R["sync"]["table_bytes"] = {s: int(psql("SELECT pg_total_relation_size('zendesk.%s')" % s)) for s in STREAMS}


def step_copy_floor(mock, R, workdir):
    log("COPY floor: dumping the account and converting it to typed COPY rows")
    psql("CREATE SCHEMA floor")
    files = {}
    n = {}
    for res in STREAMS:
        cols = table_columns("zendesk", res)
        recs = mock.call("GET", "/__mock/account/%s?visible=1" % res)
        n[res] = len(recs)
        path = os.path.join(workdir, "%s.copy" % res)
        write_copy_file(recs, cols, res, path)
        os.chmod(path, 0o644)
        files[res] = (path, cols)
        del recs
    out = {}
    for res in STREAMS:
        path, cols = files[res]
        psql("CREATE TABLE floor.%s (LIKE zendesk.%s INCLUDING ALL)" % (res, res))
        psql("CHECKPOINT")
        script = """
SELECT pg_read_file('/proc/self/stat');
SELECT extract(epoch FROM clock_timestamp());
COPY floor.%s (%s) FROM %s;
SELECT extract(epoch FROM clock_timestamp());
SELECT pg_read_file('/proc/self/stat');
""" % (res, ", ".join('"%s"' % c for c, _ in cols), sql_lit(path))
        lines = [l for l in psql_script(script).splitlines() if l.strip()]
        cpu0, t0, t1, cpu1 = proc_stat_cpu(lines[0]), float(lines[1]), float(lines[2]), proc_stat_cpu(lines[3])
        out[res] = {"records": n[res], "seconds": t1 - t0, "backend_cpu": cpu1 - cpu0,
                    "file_bytes": os.path.getsize(path)}
        log("  COPY %-14s %7d rows %6.2fs  %8.0f rows/s" % (res, n[res], t1 - t0, n[res] / (t1 - t0)))
    R["copy"] = out
    # the same data is in both: a check that the floor is comparable
    R["copy_check"] = {res: psql("SELECT count(*) FROM floor.%s f JOIN zendesk.%s z USING (id) "
                                 "WHERE f.data IS DISTINCT FROM z.data" % (res, res)) for res in STREAMS}


def step_node(mock, R, mode, pg_url, node_dir):
    schema = "node_" + mode
    log("Node.js (node-zendesk + pg), %s mode" % mode)
    psql("CREATE SCHEMA %s" % schema)
    for res in STREAMS:
        psql("CREATE TABLE %s.%s (LIKE zendesk.%s INCLUDING ALL)" % (schema, res, res))
    psql("CHECKPOINT")
    mock.clear()
    m0 = mock.cpu()
    t0 = time.time()
    r = subprocess.run(["node", os.path.join(node_dir, "sync.js"), "--url", mock.url, "--pg", pg_url,
                        "--schema", schema, "--mode", mode], capture_output=True, text=True)
    elapsed = time.time() - t0
    m1 = mock.cpu()
    if r.returncode != 0:
        raise RuntimeError("node %s failed:\n%s" % (mode, r.stderr[-3000:]))
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["elapsed"] = elapsed
    out["mock_cpu"] = m1 - m0 if m0 is not None else None
    api = [q for q in mock.requests() if q["path"].startswith("/api/v2")]
    out["requests"] = len(api)
    out["status_counts"] = count_by(api, "status")
    out["table_rows"] = {s: int(psql("SELECT count(*) FROM %s.%s" % (schema, s))) for s in STREAMS}
    out["different_from_sync"] = {s: int(psql("SELECT count(*) FROM %s.%s n FULL JOIN zendesk.%s z USING (id) "
                                              "WHERE n.data IS DISTINCT FROM z.data" % (schema, s, s)))
                                  for s in STREAMS}
    R["node_" + mode] = out
    for s in out["streams"]:
        log("  %-14s %4d pages %7d records %7.1fs  %8.0f rec/s" % (
            s["stream"], s["pages"], s["records"], s["seconds"], s["records"] / s["seconds"]))
    log("  total %.1fs, node CPU %.1fs, backend CPU %.1fs" % (
        out["seconds"], out["cpu_ticks"]["node"] / CLK, out["cpu_ticks"]["pg_backend"] / CLK))


def step_incremental(mock, R, n_tickets):
    ids = [int(x) for x in psql("SELECT id FROM zendesk.tickets WHERE status <> 'deleted' ORDER BY id").split()]
    rnd = random.Random(42)
    k = max(1, n_tickets // 100)
    pick = sorted(rnd.sample(ids, k))
    now = int(mock.call("GET", "/__mock/clock")["now"])
    log("incremental: %d tickets (1%%) changed through the mock, then zendesk_sync again" % k)
    for i, tid in enumerate(pick):
        mock.call("POST", "/__mock/mutate/tickets",
                  {"op": "update", "id": tid, "at": now - 1200 + (i * 1000) // k,
                   "changes": {"subject": "bench change %d" % i, "priority": "high"}})
    r = run_sync(mock, "zendesk")
    by_stream = count_by([dict(q, stream=q["path"].split("/")[4]) for q in r["request_log"]], "stream")
    R["incremental"] = {"changed_tickets": k, "elapsed": r["elapsed"], "requests": r["requests"],
                        "requests_by_stream": by_stream, "streams": r["streams"],
                        "status_counts": r["status_counts"], "worker": r["worker"],
                        "changed_rows": int(psql("SELECT count(*) FROM zendesk.tickets WHERE subject LIKE 'bench change %'"))}
    log("  %.2fs, %d requests %s, %d changed rows found" % (r["elapsed"], r["requests"], by_stream,
                                                           R["incremental"]["changed_rows"]))


def step_live(mock, R, probe_id):
    log("live queries on the foreign tables")
    psql("CREATE SCHEMA zd")
    psql("IMPORT FOREIGN SCHEMA zendesk FROM SERVER zendesk INTO zd")
    queries = [
        ("WHERE id = const", "SELECT id, subject FROM zd.tickets WHERE id = %d" % probe_id),
        ("WHERE updated_at > now() - 1 hour",
         "SELECT count(*) FROM zd.tickets WHERE updated_at > now() - interval '1 hour'"),
        ("LIMIT 10", "SELECT id, subject FROM zd.tickets LIMIT 10"),
    ]
    out = []
    for name, sql in queries:
        explain = psql("EXPLAIN (VERBOSE, COSTS OFF) " + sql)
        mock.clear()
        t0 = time.time()
        rows = psql(sql).splitlines()
        el = time.time() - t0
        api = [q for q in mock.requests() if q["path"].startswith("/api/v2")]
        remote = [l.strip() for l in explain.splitlines() if re.search(r"GET|Zendesk|[Pp]ushed|Remote", l)]
        out.append({"query": name, "sql": sql, "seconds": el, "requests": len(api), "rows": len(rows),
                    "explain": remote[:4], "paths": sorted({q["path"] for q in api})})
        log("  %-36s %6.2fs %4d requests %5d rows" % (name, el, len(api), len(rows)))
    R["live"] = out


def step_small(mock, R, args):
    """Worker memory at 10,000 tickets (the mock account rebuilt smaller)."""
    t = args.small_tickets
    log("small account: %d tickets, the same sync into another schema (memory comparison)" % t)
    mock.call("POST", "/__mock/reset", {"tickets": t, "users": args.users * t // args.tickets,
                                        "organizations": max(20, args.organizations * t // args.tickets),
                                        "events_per_ticket": args.events_per_ticket,
                                        "rate_limit": 0, "holdback": 1})
    page_exports(mock)  # warm the mock's caches, as for the large run
    psql("CREATE SERVER zendesk_small FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url %s)" % sql_lit(mock.url))
    psql("CREATE USER MAPPING FOR CURRENT_USER SERVER zendesk_small "
         "OPTIONS (email 'admin@example.com', api_token 'test-token')")
    r = run_sync(mock, "zendesk_small", target_schema="small")
    R["small"] = {k: v for k, v in r.items() if k != "request_log"}
    R["small"]["tickets"] = t
    log("  %.1fs, worker VmHWM %d kB, RssAnon peak %d kB" % (r["elapsed"], r["worker"]["VmHWM"],
                                                            r["worker"]["RssAnon"]))


def step_rate_limit(mock, R, args):
    """A short sync under 10 export requests per window: the worker paces
    itself from the headers; count 429s and the windows used."""
    limit, window, pp = 10, args.rate_window, args.rate_page_size
    log("rate limit: %d export requests per %d s window, page_size %d (users stream)" % (limit, window, pp))
    psql("CREATE SERVER zendesk_rl FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url %s, page_size '%d')"
         % (sql_lit(mock.url), pp))
    psql("CREATE USER MAPPING FOR CURRENT_USER SERVER zendesk_rl "
         "OPTIONS (email 'admin@example.com', api_token 'test-token')")
    mock.call("POST", "/__mock/config", {"rate_limit": limit, "rate_window": window})
    # start right after a window boundary of the mock clock
    now = mock.call("GET", "/__mock/clock")["now_float"]
    time.sleep(window - (now % window) + 0.05)
    r = run_sync(mock, "zendesk_rl", streams=["users"], target_schema="rl")
    mock.call("POST", "/__mock/config", {"rate_limit": 0})
    exp = [q for q in r["request_log"] if q["path"].startswith("/api/v2/incremental")]
    wins = [q["time"] // window for q in exp]
    span = (max(wins) - min(wins) + 1) if wins else 0
    per_win = count_by([{"w": w - min(wins)} for w in wins], "w")
    recs = sum(s["records"] for s in r["streams"])
    theo = limit * pp / window
    R["rate_limit"] = {
        "limit": limit, "window": window, "per_page": pp, "requests": len(exp),
        "status_counts": count_by(exp, "status"), "records": recs, "elapsed": r["elapsed"],
        "windows_spanned": span, "requests_per_window": per_win,
        "theoretical_rate": theo,
        # records per second over the whole windows the run used
        "rate_over_windows": recs / (span * window) if span else None,
        "rate_end_to_end": recs / r["elapsed"],
        # share of the allowance used in the windows before the last one
        "allowance_used": (sum(1 for w in wins if w < max(wins)) / (limit * (span - 1))) if span > 1 else None,
    }
    log("  %d requests %s in %d windows %s; %d records in %.1fs; theoretical %.0f rec/s" % (
        len(exp), R["rate_limit"]["status_counts"], span, per_win, recs, r["elapsed"], theo))


# ---------------------------------------------------------------- report

def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_at_start": load, "ram_gib": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "postgres": psql("SHOW server_version", db="postgres"),
            "settings": psql("SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) "
                             "FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', "
                             "'max_wal_size', 'wal_level', 'checkpoint_timeout', 'full_page_writes')",
                             db="postgres")}


def fmt_rate(n, s):
    return "%.0f" % (n / s) if s else "-"


def report(R):
    L = []
    a = L.append
    m = R["machine"]
    sync = R["sync"]
    total_records = sum(s["records"] for s in sync["streams"])
    copy_s = sum(v["seconds"] for v in R["copy"].values())
    copy_n = sum(v["records"] for v in R["copy"].values())
    a("# zendesk_fdw benchmark, %s" % R["date"])
    a("")
    a("Machine: %d CPUs (%s), %.1f GiB RAM, Linux %s, PostgreSQL %s, Python %s, Node %s." % (
        m["nproc"], m["cpu"], m["ram_gib"], m["kernel"], m["postgres"], m["python"],
        R.get("node_careful", {}).get("node_version", "-")))
    a("PostgreSQL settings: %s." % m["settings"])
    a("Load average (1, 5, 15 min) at start: %s; at end: %s (other work on the machine shows here)." % (
        m.get("loadavg_at_start"), m.get("loadavg_at_end")))
    a("Command: `%s`" % R["command"])
    a("Account: %d tickets, %d ticket events, %d users, %d organizations (mock, rate limit off, "
      "hold-back 1 s)." % tuple(R["copy"][s]["records"] for s in STREAMS))
    w = R.get("warmup")
    if w:
        a("Before the measured runs: %d MB of WAL written and checkpointed (%d segments left to recycle), "
          "so no client pays for creating WAL segments." % (w["wal_bytes"] // 1048576, w["wal_segments_after"]))
    a("")
    a("## Throughput: the same records into the same typed tables")
    a("")
    a("| stream | zendesk_sync rec/s | COPY rec/s | Node careful rec/s | Node common rec/s |")
    a("|---|---:|---:|---:|---:|")
    nc = R.get("node_careful")
    nm = R.get("node_common")

    def node_rate(node, s):
        if not node:
            return "-"
        for x in node["streams"]:
            if x["stream"] == s:
                return fmt_rate(x["records"], x["seconds"])
        return "-"
    for s in sync["streams"]:
        a("| %s | %s | %s | %s | %s |" % (s["stream"], fmt_rate(s["records"], s["seconds"]),
                                          fmt_rate(R["copy"][s["stream"]]["records"], R["copy"][s["stream"]]["seconds"]),
                                          node_rate(nc, s["stream"]), node_rate(nm, s["stream"])))
    sync_s = sum(s["seconds"] for s in sync["streams"])
    a("| **all** | **%s** | **%s** | **%s** | **%s** |" % (
        fmt_rate(total_records, sync_s), fmt_rate(copy_n, copy_s),
        fmt_rate(sum(x["records"] for x in nc["streams"]), nc["seconds"]) if nc else "-",
        fmt_rate(sum(x["records"] for x in nm["streams"]), nm["seconds"]) if nm else "-"))
    a("| time | %.1f s | %.1f s | %.1f s | %.1f s |" % (sync_s, copy_s, nc["seconds"] if nc else 0,
                                                        nm["seconds"] if nm else 0))
    a("")
    ratio_copy = (total_records / sync_s) / (copy_n / copy_s)
    a("Ratios (records/s): zendesk_sync / COPY = **%.2f** (target >= 0.7)" % ratio_copy +
      (", zendesk_sync / Node careful = **%.2f** (target >= 1.8)" % (nc["seconds"] / sync_s) if nc else "") +
      (", zendesk_sync / Node common = **%.2f** (target >= 6)" % (nm["seconds"] / sync_s) if nm else "") + ".")
    a("")
    a("Same records in all three: rows whose data differs from the synced table: COPY %s; Node careful %s; "
      "Node common %s." % (R.get("copy_check"), (nc or {}).get("different_from_sync"),
                          (nm or {}).get("different_from_sync")))
    a("")
    a("zendesk_sync: %.1f s wall for the whole call (%d requests, statuses %s), %.0f MB of WAL." % (
        sync["elapsed"], sync["requests"], sync["status_counts"], sync["wal_bytes"] / 1e6))
    a("")
    a("## CPU per record (user + system, from /proc/<pid>/stat)")
    a("")
    a("| client | client process | its PostgreSQL backend | total | per record | mock (server side) |")
    a("|---|---:|---:|---:|---:|---:|")
    w = sync["worker"]["cpu"]
    a("| zendesk_sync | (in the worker) | %.1f s (worker = backend) | %.1f s | %.1f µs | %.1f s |" % (
        w, w, w / total_records * 1e6, sync["mock_cpu"] or 0))
    ccpu = sum(v["backend_cpu"] for v in R["copy"].values())
    a("| COPY (server-side file) | - | %.1f s | %.1f s | %.1f µs | - |" % (ccpu, ccpu, ccpu / copy_n * 1e6))
    for node, name in ((nc, "Node careful"), (nm, "Node common")):
        if node:
            n_recs = sum(x["records"] for x in node["streams"])
            cn, cb = node["cpu_ticks"]["node"] / CLK, node["cpu_ticks"]["pg_backend"] / CLK
            a("| %s | %.1f s | %.1f s | %.1f s | %.1f µs | %.1f s |" % (
                name, cn, cb, cn + cb, (cn + cb) / n_recs * 1e6, node["mock_cpu"] or 0))
    a("")
    a("## Memory")
    a("")
    a("| run | tickets | worker VmHWM | worker peak RssAnon (private) | peak RssShmem (shared buffers touched) |")
    a("|---|---:|---:|---:|---:|")
    for key, t in (("small", R.get("small", {}).get("tickets")), ("sync", R["copy"]["tickets"]["records"])):
        if key in R:
            wk = R[key]["worker"]
            a("| zendesk_sync %s | %d | %d kB | %d kB | %d kB |" % (
                "10k" if key == "small" else "full", t, wk["VmHWM"], wk["RssAnon"], wk["RssShmem"]))
    for node, name in ((nc, "Node careful"), (nm, "Node common")):
        if node:
            a("| %s (node process) | %d | %d kB | | |" % (name, R["copy"]["tickets"]["records"], node["node_vmhwm_kb"]))
    a("")
    a("## Mock serving time (plain Python client, gzip, keep-alive, paging fields only)")
    a("")
    ms = R["mock_serving"]
    a("| stream | requests | cold (builds caches) | warm |")
    a("|---|---:|---:|---:|")
    for s in STREAMS:
        a("| %s | %d | %.1f s | %.2f s |" % (s, ms["cold"][s]["requests"], ms["cold"][s]["seconds"],
                                          ms["warm"][s]["seconds"]))
    a("")
    if "incremental" in R:
        inc = R["incremental"]
        a("## Incremental run after %d tickets (1%%) changed" % inc["changed_tickets"])
        a("")
        a("%.2f s, %d requests (%s), statuses %s; %d changed rows arrived." % (
            inc["elapsed"], inc["requests"], inc["requests_by_stream"], inc["status_counts"], inc["changed_rows"]))
        a("")
    if "live" in R:
        a("## Live queries on the foreign tables")
        a("")
        a("| query | time | requests | rows | remote part (EXPLAIN VERBOSE) |")
        a("|---|---:|---:|---:|---|")
        for q in R["live"]:
            a("| `%s` | %.2f s | %d | %d | %s |" % (q["sql"], q["seconds"], q["requests"], q["rows"],
                                                 "; ".join(q["explain"]).replace("|", "\\|") or "-"))
        a("")
    if "rate_limit" in R:
        rl = R["rate_limit"]
        a("## Under a rate limit (%d export requests per %d s window, page_size %d)" % (
            rl["limit"], rl["window"], rl["per_page"]))
        a("")
        a("%d requests, statuses %s, over %d windows (requests per window %s); %d records in %.1f s." % (
            rl["requests"], rl["status_counts"], rl["windows_spanned"], rl["requests_per_window"],
            rl["records"], rl["elapsed"]))
        a("Theoretical rate %.0f rec/s; achieved over the windows used %.0f rec/s (**%.0f%%**); "
          "allowance used in all but the last window %s." % (
              rl["theoretical_rate"], rl["rate_over_windows"] or 0,
              100 * (rl["rate_over_windows"] or 0) / rl["theoretical_rate"],
              "%.0f%%" % (100 * rl["allowance_used"]) if rl["allowance_used"] is not None else "-"))
        a("")
    fps = sorted({fp for _, fp in R.get("so_fingerprints", [])}, key=str)
    a("zendesk_fdw.so (sha1 prefix) during the sync runs: %s%s." % (
        ", ".join(str(f) for f in fps),
        "" if len(fps) <= 1 else " -- WARNING: the library changed during the run (someone reinstalled it); "
        "the sync figures are not from one build"))
    a("")
    a("Total benchmark time: %.0f s." % R["bench_seconds"])
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mock-url", required=True)
    ap.add_argument("--mock-pid", type=int, default=0)
    ap.add_argument("--postmaster-pid", type=int, required=True)
    ap.add_argument("--pg-url", required=True, help="for the Node client, e.g. postgres://postgres@127.0.0.1:5432/bench")
    ap.add_argument("--workdir", required=True, help="a directory the PostgreSQL server can read")
    ap.add_argument("--node-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "node"))
    ap.add_argument("--tickets", type=int, default=100000)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--organizations", type=int, default=2000)
    ap.add_argument("--events-per-ticket", type=int, default=3)
    ap.add_argument("--small-tickets", type=int, default=10000)
    ap.add_argument("--rate-window", type=int, default=6)
    ap.add_argument("--rate-page-size", type=int, default=50)
    ap.add_argument("--skip", default="", help="comma list of steps to skip: node_common,node_careful,live,small,rate")
    ap.add_argument("--command", default=" ".join(sys.argv))
    ap.add_argument("--out", required=True, help="report file (markdown); the JSON goes next to it")
    args = ap.parse_args()
    skip = set(x for x in args.skip.split(",") if x)
    POSTMASTER[0] = args.postmaster_pid

    T0 = time.time()
    R = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "command": args.command}
    mock = Mock(args.mock_url, args.mock_pid)
    R["machine"] = machine()
    setup_db(mock.url)
    step_warm_wal(R, args.tickets)
    step_mock_serving(mock, R)
    step_sync(mock, R)
    step_copy_floor(mock, R, args.workdir)
    if "node_careful" not in skip:
        step_node(mock, R, "careful", args.pg_url, args.node_dir)
    if "node_common" not in skip:
        step_node(mock, R, "common", args.pg_url, args.node_dir)
    step_incremental(mock, R, args.tickets)
    if "live" not in skip:
        probe = int(psql("SELECT id FROM zendesk.tickets WHERE status <> 'deleted' ORDER BY id OFFSET %d LIMIT 1"
                         % (args.tickets // 2)))
        step_live(mock, R, probe)
    if "small" not in skip:
        step_small(mock, R, args)
    if "rate" not in skip:
        step_rate_limit(mock, R, args)
    R["bench_seconds"] = time.time() - T0
    R["so_fingerprints"] = SO_SEEN
    with open("/proc/loadavg") as f:
        R["machine"]["loadavg_at_end"] = " ".join(f.read().split()[:3])
    with open(args.out + ".json" if not args.out.endswith(".md") else args.out[:-3] + ".json", "w") as f:
        json.dump(R, f, indent=1, default=str)
    text = report(R)
    with open(args.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
