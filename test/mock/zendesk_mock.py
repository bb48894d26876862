#!/usr/bin/env python3
"""Mock Zendesk Support API server for the zendesk_fdw tests.

Python 3 standard library only.  See README.md in this directory for the
flags, the endpoints, the control API (/__mock/...) and the fault kinds.

The account is built deterministically from the recorded fixtures in
test/fixtures/zendesk/ and --seed.  Records are generated lazily: the server
keeps only (change_ts, id) keys plus a few small per-record parameters and
builds the JSON objects on demand, so exports cost O(page size + log n).
"""

import argparse
import base64
import binascii
import bisect
import calendar
import copy
import gzip
import hashlib
import html
import json
import math
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures", "zendesk"))

JSON_CT = "application/json; charset=utf-8"
DAY = 86400
START_EPOCH = 1672531200  # 2023-01-01T00:00:00Z
END_EPOCH = 1761955200    # 2025-11-01T00:00:00Z
M64 = (1 << 64) - 1

GEN_USER_BASE = 30000000000000
GEN_ORG_BASE = 31000000000000
EVENT_BASE = 614323587394          # first generated ticket event (audit) id
METRIC_BASE = 27000000000000       # first generated ticket metric event id
GROUP_ID = 26363643448211
CF_IDS = [360000000001, 360000000002, 360000000003, 360000000004,
          360000000005, 360000000006]

SUBJECTS = [
    "My printer is on fire!", "Cannot log in", "Refund request",
    "Invoice question", "Shipping delay", "Password reset",
    "Feature request: dark mode", "Bug report: export fails",
    "Ünïcødé subject ✓ – 日本語", 'Quote "test" and back\\slash',
]
STATUSES = ["new", "open", "open", "pending", "hold", "solved", "solved", "open"]
PRIORITIES = [None, "low", "normal", "normal", "high", "urgent"]
TYPES = [None, "question", "incident", "problem", "task"]
TAG_POOL = ["billing", "vip", "printer", "refund", "urgent_issue"]
TICKET_SPECIALS = ["deleted", "archived", "scrubbed", "merged", "deleted",
                   "archived", "merged", "scrubbed", "archived", "deleted"]
VIA_LABELS = {"web": "Web form", "email": "Mail", "api": "Web service",
              "sample_ticket": "Sample Ticket"}
TICKET_GEN_KEYS = ("url", "id", "external_id", "created_at", "updated_at", "generated_timestamp",
                   "type", "subject", "raw_subject", "description", "priority", "status",
                   "requester_id", "submitter_id", "assignee_id", "organization_id", "group_id",
                   "collaborator_ids", "follower_ids", "email_cc_ids", "problem_id",
                   "has_incidents", "due_at", "tags", "custom_fields", "fields")
SYSTEM_NULL = {"client": None, "location": None, "latitude": None, "longitude": None}

RESOURCES = ("tickets", "users", "organizations", "ticket_events", "ticket_metric_events")
SINGULAR = {"tickets": "ticket", "users": "user", "organizations": "organization"}

HTML_503 = ("<!DOCTYPE html>\n<html>\n<head><title>503 Service Temporarily Unavailable"
            "</title></head>\n<body>\n<center><h1>503 Service Temporarily Unavailable"
            "</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n")
HTML_200 = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            "<title>Example Support</title></head>\n<body>\n<h1>We'll be back soon</h1>\n"
            "<p>Example Support is undergoing scheduled maintenance.</p>\n</body>\n</html>\n")
RATE_LIMIT_TEXT = "Number of allowed API requests per minute exceeded"
FAULT_KINDS = ("429", "500", "502", "503", "504", "html_200", "truncated", "reset",
               "reset_mid_body", "slow", "bad_cursor", "status", "json_body", "headers")
PASS_THROUGH_KINDS = ("slow", "truncated", "reset_mid_body", "headers")

CURSOR_RE = re.compile(r"^(-?\d+)(?:\.\d+)?\|\|(-?\d+)\|$")

DEFAULTS = {
    "host": "127.0.0.1", "port": 8765, "holdback": 60, "rate_limit": 10,
    "rate_window": 60, "account_rate_limit": 700, "tickets": 200, "users": 50,
    "organizations": 20, "events_per_ticket": 3, "seed": 1,
    "email": "admin@example.com", "token": "test-token", "oauth_token": "test-oauth",
    "subdomain": "example", "fixtures": DEFAULT_FIXTURES,
}
RESET_KEYS = ("tickets", "users", "organizations", "events_per_ticket", "seed", "holdback",
              "rate_limit", "rate_window", "account_rate_limit", "email", "token",
              "oauth_token", "subdomain")
INT_KEYS = ("tickets", "users", "organizations", "events_per_ticket", "seed", "holdback",
            "rate_limit", "rate_window", "account_rate_limit")


# ---------------------------------------------------------------- helpers

def _mix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def parse_iso(s):
    if not s:
        return None
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), check_circular=False).encode("utf-8")


def dumps_page(key, records_json, rest):
    """The bytes of dumps({key: [records...], **rest}), built from each
    record's dumps() (see Store.json): a page is a join, not a re-encode."""
    out = [b"{", dumps(key), b":[", b",".join(records_json), b"]"]
    if rest:
        out.append(b",")
        out.append(dumps(rest)[1:])
    else:
        out.append(b"}")
    return b"".join(out)


# gzip of recent response bodies, keyed by a digest of the body: serving the
# same page again (another client, a retry) does not compress it again.
_GZIP_CACHE = {}
_GZIP_CACHE_BYTES = [0]
_GZIP_CACHE_MAX = 256 * 1024 * 1024
_GZIP_MIN = 64 * 1024
_GZIP_LOCK = threading.Lock()


def gzip_body(body):
    if len(body) < _GZIP_MIN:
        return gzip.compress(body, compresslevel=5)
    key = hashlib.blake2b(body, digest_size=20).digest() + len(body).to_bytes(8, "little")
    with _GZIP_LOCK:
        z = _GZIP_CACHE.pop(key, None)
        if z is not None:
            _GZIP_CACHE[key] = z  # most recently used last
            return z
    z = gzip.compress(body, compresslevel=5)
    with _GZIP_LOCK:
        if key not in _GZIP_CACHE:
            _GZIP_CACHE[key] = z
            _GZIP_CACHE_BYTES[0] += len(z)
            while _GZIP_CACHE_BYTES[0] > _GZIP_CACHE_MAX and _GZIP_CACHE:
                _GZIP_CACHE_BYTES[0] -= len(_GZIP_CACHE.pop(next(iter(_GZIP_CACHE))))
    return z


def encode_cursor(ts, rid):
    return base64.b64encode(("%d.0||%d|" % (ts, rid)).encode("ascii")).decode("ascii")


def decode_cursor(s):
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True).decode("ascii")
    except (ValueError, UnicodeError, binascii.Error):
        return None
    m = CURSOR_RE.match(raw)
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2)))


def encode_list_cursor(order, rid):
    v = base64.b64encode(b"i" + struct.pack("<q", rid)).decode("ascii")
    raw = json.dumps({"o": order, "v": v}, separators=(",", ":"))
    return base64.b64encode(raw.encode("ascii")).decode("ascii")


def decode_list_cursor(order, s):
    try:
        obj = json.loads(base64.b64decode(s.encode("ascii"), validate=True))
        if not isinstance(obj, dict) or obj.get("o") != order:
            return None
        v = base64.b64decode(obj["v"].encode("ascii"), validate=True)
        if len(v) != 9 or v[:1] != b"i":
            return None
        return struct.unpack("<q", v[1:])[0]
    except (ValueError, UnicodeError, binascii.Error, KeyError, TypeError, AttributeError,
            struct.error):
        return None


def _truthy(v):
    return str(v).lower() in ("1", "true", "yes", "on")


class ApiError(Exception):
    def __init__(self, status, body, headers=None):
        Exception.__init__(self, "%s %r" % (status, body))
        self.status = status
        self.body = body
        self.headers = headers or []


class Resp:
    """A response to be sent: status, headers, body bytes, delivery mode."""

    def __init__(self, status, body=b"", content_type=JSON_CT, headers=None):
        self.status = status
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray)):
            body = dumps(body)
        self.body = bytes(body)
        self.headers = []
        if content_type:
            self.headers.append(("Content-Type", content_type))
        self.headers.extend(headers or [])
        self.delivery = "normal"  # normal | truncated | reset | reset_mid_body


# ---------------------------------------------------------------- fixtures

_FIXTURE_CACHE = {}


class Fixtures:
    def __init__(self, directory):
        self.dir = directory

        def load(name):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                return json.load(f)

        self.errors = {c["case"]: c for c in load("errors.json")["cases"]}
        real = {}
        for name in ("incremental_tickets_time_end_of_stream_with_deleted.json",
                     "incremental_tickets_cursor_end_of_stream.json",
                     "incremental_tickets_cursor_first_page.json",
                     "incremental_tickets_time_first_page_same_timestamp.json"):
            for t in load(name)["tickets"]:
                real.setdefault(t["id"], t)
        show = [load("ticket_show.json")["ticket"]] + load("tickets_list_cursor_page.json")["tickets"]
        for t in show:
            if t["id"] not in real:
                t = dict(t)
                t["generated_timestamp"] = parse_iso(t["updated_at"])
                real[t["id"]] = t
        self.tickets = real
        users = {}
        for name in ("incremental_users_cursor_page.json",
                     "incremental_users_cursor_end_of_stream.json",
                     "incremental_users_time_same_timestamp_deleted_users.json"):
            for u in load(name)["users"]:
                users.setdefault(u["id"], u)
        self.users = users
        self.orgs = {o["id"]: o for o in load("incremental_organizations_end_of_stream.json")["organizations"]}
        ev = load("incremental_ticket_events_child_events.json")["ticket_events"]
        self.event_system_web = ev[2]["system"]
        cex = load("incremental_ticket_events_comment_events_example.json")["ticket_events"][0]
        self.comment_child_keys = list(cex["child_events"][0].keys())
        self.metric_event = load("incremental_ticket_metric_events_end_of_stream.json")["ticket_metric_events"][0]

    @classmethod
    def get(cls, directory):
        directory = os.path.abspath(directory)
        fx = _FIXTURE_CACHE.get(directory)
        if fx is None:
            fx = _FIXTURE_CACHE[directory] = cls(directory)
        return fx

    def error_body(self, case):
        return copy.deepcopy(self.errors[case]["body"])


# ---------------------------------------------------------------- store

class Store:
    """Records of one resource: sorted ids, change times, (ts, id) keys.

    `over` holds materialised records (real fixture copies and mutated
    records); everything else is produced by `gen(id)` on demand.
    """

    def __init__(self, name, gen):
        self.name = name
        self.gen = gen
        self.ids = []
        self.ts = {}
        self.keys = []
        self.over = {}
        self.deleted = set()
        self.archived = set()
        # dumps() of records as served, per form ("" = as stored), dropped
        # when a record changes: generating and encoding a record costs far
        # more than serving it
        self.jcache = {}

    def finalize(self):
        self.ids.sort()
        ts = self.ts
        self.keys = sorted([(ts[i], i) for i in self.ids])

    def add_initial(self, rid, ts):
        self.ids.append(rid)
        self.ts[rid] = ts

    def has(self, rid):
        return rid in self.ts

    def get(self, rid):
        r = self.over.get(rid)
        return r if r is not None else self.gen(rid)

    def json(self, rid, form="", make=None):
        """dumps() of the record in a form (make(rid) builds it; default get)."""
        cache = self.jcache.get(form)
        if cache is None:
            cache = self.jcache[form] = {}
        b = cache.get(rid)
        if b is None:
            b = cache[rid] = dumps(make(rid) if make is not None else self.get(rid))
        return b

    def forget_json(self, rid):
        for cache in self.jcache.values():
            cache.pop(rid, None)

    def put(self, rid, rec, ts):
        self.forget_json(rid)
        self.over[rid] = rec
        old = self.ts.get(rid)
        keys = self.keys
        if old is not None:
            i = bisect.bisect_left(keys, (old, rid))
            if i < len(keys) and keys[i] == (old, rid):
                del keys[i]
        else:
            bisect.insort(self.ids, rid)
        self.ts[rid] = ts
        bisect.insort(keys, (ts, rid))

    def put_many(self, items):
        new = False
        for rid, rec, ts in items:
            self.forget_json(rid)
            if rid not in self.ts:
                self.ids.append(rid)
                new = True
            self.over[rid] = rec
            self.ts[rid] = ts
        if new:
            self.ids.sort()
        ts = self.ts
        self.keys = sorted([(ts[i], i) for i in self.ids])

    def hidden(self, rid):
        return rid in self.deleted or rid in self.archived


# ---------------------------------------------------------------- account

class Account:
    def __init__(self, fx, cfg, now):
        self.fx = fx
        self.seed = int(cfg["seed"])
        self.sub = str(cfg["subdomain"])
        self.url_base = "https://%s.zendesk.com/api/v2" % self.sub
        self.n_tickets = max(0, int(cfg["tickets"]))
        self.n_users = max(0, int(cfg["users"]))
        self.n_orgs = max(0, int(cfg["organizations"]))
        self.ept = max(0, int(cfg["events_per_ticket"]))
        # Generated change times lie in [2023-01-01, 2025-11-01) (or until yesterday if the
        # machine clock is older): fixed, so the data set is the same every day.
        end = min(END_EPOCH, (int(now) // DAY) * DAY - DAY)
        self.t0 = START_EPOCH
        self.t1 = max(end, START_EPOCH + 400 * DAY)
        self.lock = threading.RLock()
        self._events = None
        self._metrics = None
        self.next_event_id = None
        self.next_metric_id = None
        self._build_orgs()
        self._build_users()
        self._build_tickets()

    # -- utilities
    def _h(self, salt, i):
        return _mix((self.seed * 0x9E3779B97F4A7C15 + salt * 0xD6E8FEB86659FD93 + i) & M64)

    def _fix(self, rec):
        if self.sub == "example":
            return rec
        s = json.dumps(rec).replace("https://example.zendesk.com", "https://%s.zendesk.com" % self.sub)
        return json.loads(s)

    def _span(self, h, lo, hi):
        if hi <= lo:
            return lo
        return lo + h % (hi - lo)

    # -- organizations
    def _build_orgs(self):
        fx = self.fx
        real = {i: self._fix(o) for i, o in fx.orgs.items()}
        ref = set()
        for t in fx.tickets.values():
            if isinstance(t.get("organization_id"), int):
                ref.add(t["organization_id"])
        for u in fx.users.values():
            if isinstance(u.get("organization_id"), int):
                ref.add(u["organization_id"])
        tpl = next(iter(fx.orgs.values()))
        self.o_tpl = copy.deepcopy(self._fix(tpl))
        st = self.orgs = Store("organizations", self._gen_org)
        self.o_meta = {}
        base_ids = sorted(set(real) | ref)[: self.n_orgs]
        n = 1
        for oid in base_ids:
            if oid in real:
                st.over[oid] = real[oid]
                st.add_initial(oid, parse_iso(real[oid]["updated_at"]))
                if real[oid].get("deleted_at"):
                    st.deleted.add(oid)
            else:
                h = self._h(11, oid)
                upd = self._span(h, self.t0, self.t1)
                self.o_meta[oid] = (n, upd - (h >> 20) % (200 * DAY), upd, "normal")
                st.add_initial(oid, upd)
                n += 1
        G = self.n_orgs - len(base_ids)
        for g in range(G):
            oid = GEN_ORG_BASE + g * 1000 + self._h(12, g) % 1000
            h = self._h(13, oid)
            upd = self._span(h, self.t0, self.t1)
            kind = "deleted" if (g == 1 or g % 25 == 24) else "normal"
            self.o_meta[oid] = (n, upd - (h >> 20) % (200 * DAY), upd, kind)
            st.add_initial(oid, upd)
            if kind == "deleted":
                st.deleted.add(oid)
            n += 1
        st.finalize()
        self.org_pick = [i for i in st.ids if i not in st.deleted] or list(st.ids)

    def _gen_org(self, oid):
        n, cre, upd, kind = self.o_meta[oid]
        r = dict(self.o_tpl)
        name = "Example Org %d" % n
        r["url"] = "%s/organizations/%d.json" % (self.url_base, oid)
        r["id"] = oid
        r["name"] = ("%d_deleted_%s" % (oid, name)) if kind == "deleted" else name
        r["external_id"] = ("ORG-%d" % n) if n % 3 == 0 else None
        r["created_at"] = iso(cre)
        r["updated_at"] = iso(upd)
        r["domain_names"] = ["org%d.example.com" % n] if n % 2 == 0 else []
        r["notes"] = "Generated organization %d" % n if n % 4 == 0 else None
        r["tags"] = ["enterprise"] if n % 5 == 0 else []
        r["deleted_at"] = iso(upd) if kind == "deleted" else None
        return r

    # -- users
    def _build_users(self):
        fx = self.fx
        real = {i: self._fix(u) for i, u in fx.users.items()}
        ref, ref_agents = set(), set()
        for t in fx.tickets.values():
            for k in ("requester_id", "submitter_id"):
                if isinstance(t.get(k), int):
                    ref.add(t[k])
            for k in ("collaborator_ids", "follower_ids", "email_cc_ids"):
                for v in t.get(k) or []:
                    ref.add(v)
            if isinstance(t.get("assignee_id"), int):
                ref.add(t["assignee_id"])
                ref_agents.add(t["assignee_id"])
        ref -= set(real)
        tpl_end = tpl_admin = tpl_del = None
        for u in real.values():
            if "permanently_deleted" in u and not u["active"] and tpl_del is None:
                tpl_del = u
            elif u["role"] == "admin" and tpl_admin is None:
                tpl_admin = u
            elif u["role"] == "end-user" and u["active"] and tpl_end is None:
                tpl_end = u
        self.u_tpl_end = copy.deepcopy(tpl_end)
        self.u_tpl_admin = copy.deepcopy(tpl_admin)
        self.u_tpl_del = copy.deepcopy(tpl_del)
        st = self.users = Store("users", self._gen_user)
        self.u_meta = {}
        agents = []
        base_ids = sorted(set(real) | ref)[: self.n_users]
        n = 100
        for uid in base_ids:
            if uid in real:
                st.over[uid] = real[uid]
                st.add_initial(uid, parse_iso(real[uid]["updated_at"]))
                if not real[uid]["active"]:
                    st.deleted.add(uid)
                elif real[uid]["role"] in ("admin", "agent"):
                    agents.append(uid)
            else:
                h = self._h(21, uid)
                upd = self._span(h, self.t0, self.t1)
                role = "agent" if uid in ref_agents else "end-user"
                self.u_meta[uid] = (n, upd - (h >> 20) % (300 * DAY), upd, "normal", role)
                st.add_initial(uid, upd)
                if role == "agent":
                    agents.append(uid)
                n += 1
        G = self.n_users - len(base_ids)
        for g in range(G):
            uid = GEN_USER_BASE + g * 1000 + self._h(22, g) % 1000
            h = self._h(23, uid)
            upd = self._span(h, self.t0, self.t1)
            role = "admin" if g == 0 else ("agent" if g % 10 == 1 else "end-user")
            kind = "normal"
            if g % 17 == 16:
                kind = "deleted"
            elif g % 29 == 28:
                kind = "suspended"
            self.u_meta[uid] = (n, upd - (h >> 20) % (300 * DAY), upd, kind, role)
            st.add_initial(uid, upd)
            if kind == "deleted":
                st.deleted.add(uid)
            elif role in ("admin", "agent"):
                agents.append(uid)
            n += 1
        st.finalize()
        self.user_pick = [i for i in st.ids if i not in st.deleted] or list(st.ids)
        self.agent_pick = sorted(agents)
        admins = [i for i in self.agent_pick
                  if (st.over.get(i) or {}).get("role") == "admin"
                  or (i in self.u_meta and self.u_meta[i][4] == "admin")]
        self.me_id = admins[0] if admins else (self.agent_pick[0] if self.agent_pick else None)

    def _gen_user(self, uid):
        n, cre, upd, kind, role = self.u_meta[uid]
        h = self._h(24, uid)
        if kind == "deleted":
            tpl = self.u_tpl_del
        elif role in ("admin", "agent"):
            tpl = self.u_tpl_admin
        else:
            tpl = self.u_tpl_end
        r = dict(tpl)
        r["id"] = uid
        r["url"] = "%s/users/%d.json" % (self.url_base, uid)
        r["name"] = "Example User %d" % n
        r["email"] = None if kind == "deleted" else "user%d@example.com" % n
        r["created_at"] = iso(cre)
        r["updated_at"] = iso(upd)
        if "photo" in r and r["photo"] is not None and h % 4 != 0:
            r["photo"] = None
        r["organization_id"] = (self.org_pick[(h >> 8) % len(self.org_pick)]
                                if self.org_pick and (h >> 16) % 3 != 0 else None)
        r["role"] = role
        if role == "admin":
            r["role_type"] = 4
        elif role == "agent":
            r["role_type"] = 0
        else:
            r["role_type"] = None
            r["custom_role_id"] = None
        r["verified"] = kind != "deleted" and (h >> 24) % 2 == 0
        r["external_id"] = ("USR-%d" % n) if n % 7 == 0 else None
        r["tags"] = ["vip"] if n % 11 == 0 else []
        r["active"] = kind != "deleted"
        r["last_login_at"] = iso(upd - (h >> 32) % DAY) if role != "end-user" else None
        r["suspended"] = kind == "suspended"
        r["moderator"] = role != "end-user"
        r["ticket_restriction"] = None if role != "end-user" else "requested"
        r["restricted_agent"] = role == "end-user"
        r["default_group_id"] = GROUP_ID if role != "end-user" else None
        r["report_csv"] = role == "admin"
        if "permanently_deleted" in r:
            r["permanently_deleted"] = False
        return r

    # -- tickets
    def _build_tickets(self):
        fx = self.fx
        real = {i: self._fix(t) for i, t in fx.tickets.items()}
        self.t_real = real
        tpl_ids = [i for i in (1, 5, 2, 4037, 28, 4043) if i in real and real[i]["status"] != "deleted"]
        # templates must carry every key the generator sets (key set and order are kept)
        need = set(TICKET_GEN_KEYS)
        self.t_tpls = [copy.deepcopy(real[i]) for i in tpl_ids if need <= set(real[i])]
        self._cf_cache = {}
        st = self.tickets = Store("tickets", self._gen_ticket)
        self.t_meta = {}
        real_ids = sorted(real)
        N = self.n_tickets
        nspec = len(TICKET_SPECIALS)
        real_count = min(len(real_ids), max(min(N, 5), N - nspec))
        for tid in real_ids[:real_count]:
            t = real[tid]
            st.over[tid] = t
            st.add_initial(tid, t["generated_timestamp"])
            if t["status"] == "deleted":
                st.deleted.add(tid)
        G = N - real_count
        self.gen_ticket_base = max(real_ids) + 1 if real_ids else 1
        kinds = {}
        for i, kind in enumerate(TICKET_SPECIALS[:G]):
            kinds[(i * G) // nspec if G >= nspec else i] = kind
        t0, t1 = self.t0, self.t1
        span = t1 - t0
        base = self.gen_ticket_base
        ids_append = st.ids.append
        ts_map = st.ts
        meta = self.t_meta
        h = self._h
        for g in range(G):
            tid = base + g
            h1 = h(31, tid)
            h2 = _mix(h1)
            kind = kinds.get(g, "normal")
            if kind == "normal" or kind == "merged":
                gts = t0 + h1 % span
                upd = gts - (h2 >> 8) % (10 * DAY) if h2 % 4 == 0 else gts
            elif kind == "deleted":
                gts = t1 - h1 % (20 * DAY)
                upd = gts
            elif kind == "scrubbed":
                upd = t0 + h1 % (span - 40 * DAY)
                gts = upd + 30 * DAY
            else:  # archived
                upd = t0 + h1 % (span - 130 * DAY)
                gts = upd
            if upd < t0:
                upd = t0
            cre = upd - (h2 >> 24) % (45 * DAY) if (h2 >> 4) % 3 else upd
            meta[tid] = (cre, upd, gts, kind, h2)
            ids_append(tid)
            ts_map[tid] = gts
            if kind in ("deleted", "scrubbed"):
                st.deleted.add(tid)
            elif kind == "archived":
                st.archived.add(tid)
        st.finalize()
        self.t_initial_ids = list(st.ids)

    @staticmethod
    def _cf_key(h):
        return (h % 4, (h >> 3) % 2, (h >> 5) % 3, (h >> 8) % 3, (h >> 11) % 2, (h >> 13) % 2)

    @staticmethod
    def _custom_fields(key):
        a, b, c, d, e, f = key
        vals = [
            [None, "007", "10517014", "hello"][a],
            [True, False][b],
            [["a", "b"], [], ["opt_b"]][c],
            [12345678901234, None, 42][d],
            ["2024-02-29", None][e],
            ["12.50", None][f],
        ]
        return [{"id": i, "value": v} for i, v in zip(CF_IDS, vals)]

    def _gen_ticket(self, tid):
        cre, upd, gts, kind, hv = self.t_meta[tid]
        r = dict(self.t_tpls[hv % len(self.t_tpls)])  # shallow: nested values are never mutated in place
        h2 = _mix(hv)
        subject = "%s #%d" % (SUBJECTS[(hv >> 8) % len(SUBJECTS)], tid)
        desc = "%s\n\nThis is generated ticket %d. Please help." % (subject, tid)
        if kind == "scrubbed":
            subject, desc = "SCRUBBED", "X"
        if kind in ("deleted", "scrubbed"):
            status = "deleted"
        elif kind in ("archived", "merged"):
            status = "closed"
        else:
            status = STATUSES[(hv >> 12) % len(STATUSES)]
        users = self.user_pick
        req = users[(hv >> 16) % len(users)] if users else None
        agents = self.agent_pick
        assignee = agents[(hv >> 28) % len(agents)] if agents and status != "new" else None
        org = (self.org_pick[(h2 >> 4) % len(self.org_pick)]
               if self.org_pick and (h2 >> 12) % 3 != 0 else None)
        typ = TYPES[(h2 >> 16) % len(TYPES)]
        tags = set(r.get("tags") or [])
        if (h2 >> 20) % 3 == 0:
            tags.add(TAG_POOL[(h2 >> 24) % len(TAG_POOL)])
        if kind == "merged":
            tags.add("closed_by_merge")
        key = self._cf_key(h2 >> 28)
        cf = self._cf_cache.get(key)
        if cf is None:
            cf = self._cf_cache[key] = (self._custom_fields(key), self._custom_fields(key))
        r["url"] = "%s/tickets/%d.json" % (self.url_base, tid)
        r["id"] = tid
        r["external_id"] = ("EXT-%d" % tid) if tid % 7 == 0 else None
        r["created_at"] = iso(cre)
        r["updated_at"] = iso(upd)
        r["generated_timestamp"] = gts
        r["type"] = typ
        r["subject"] = subject
        r["raw_subject"] = subject
        r["description"] = desc
        r["priority"] = PRIORITIES[(h2 >> 36) % len(PRIORITIES)]
        r["status"] = status
        r["requester_id"] = req
        r["submitter_id"] = req
        r["assignee_id"] = assignee
        r["organization_id"] = org
        r["group_id"] = GROUP_ID if assignee else None
        collab = [assignee] if assignee and (h2 >> 40) % 4 == 0 else []
        r["collaborator_ids"] = collab
        r["follower_ids"] = list(collab)
        r["email_cc_ids"] = []
        r["problem_id"] = None
        r["has_incidents"] = False
        r["due_at"] = iso(upd + 7 * DAY) if typ == "task" else None
        r["tags"] = sorted(tags)
        r["custom_fields"] = cf[0]
        r["fields"] = cf[1]
        if "encoded_id" in r:
            r["encoded_id"] = self._encoded_id(tid)
        return r

    def _encoded_id(self, tid):
        alphabet = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ"
        h = self._h(41, tid)
        s = "".join(alphabet[(h >> (5 * i)) % len(alphabet)] for i in range(11))
        return s[:6] + "-" + s[6:]

    def ticket_initial(self, tid):
        t = self.t_real.get(tid)
        return t if t is not None else self._gen_ticket(tid)

    def _ticket_cu(self, tid):
        t = self.t_real.get(tid)
        if t is not None:
            c, u = parse_iso(t["created_at"]), parse_iso(t["updated_at"])
        else:
            c, u = self.t_meta[tid][0], self.t_meta[tid][1]
        return c, max(c, u)

    # -- ticket events (built lazily)
    @property
    def events(self):
        if self._events is None:
            with self.lock:
                if self._events is None:
                    self._build_events()
        return self._events

    def _build_events(self):
        st = Store("ticket_events", self._gen_event)
        n = self.ept
        self.ev_cu = []
        if n:
            ids, tsm = st.ids, st.ts
            for s, tid in enumerate(self.t_initial_ids):
                c, u = self._ticket_cu(tid)
                self.ev_cu.append((c, u))
                b = EVENT_BASE + s * n
                if n == 1:
                    ids.append(b)
                    tsm[b] = c
                else:
                    d = u - c
                    for k in range(n):
                        eid = b + k
                        ids.append(eid)
                        tsm[eid] = c + d * k // (n - 1)
        st.finalize()
        self.next_event_id = EVENT_BASE + len(self.t_initial_ids) * n + 1000
        self._events = st

    def _via_label(self, t):
        ch = (t.get("via") or {}).get("channel")
        return VIA_LABELS.get(ch, "Web form")

    def _comment_child(self, cid, label, via_obj, author, body, public, audit_id, ts):
        return {
            "id": cid, "via": via_obj, "via_reference_id": None,
            "type": "Comment", "author_id": author, "body": body,
            "html_body": '<div class="zd-comment" dir="auto"><p dir="auto">%s</p></div>' % html.escape(body),
            "plain_body": body, "public": public, "attachments": [], "audit_id": audit_id,
            "created_at": iso(ts), "event_type": "Comment",
        }

    def _gen_event(self, eid):
        n = self.ept
        s, k = divmod(eid - EVENT_BASE, n)
        tid = self.t_initial_ids[s]
        t = self.ticket_initial(tid)
        c, u = self.ev_cu[s]
        ts = c if n == 1 else c + (u - c) * k // (n - 1)
        label = self._via_label(t)
        via_obj = t.get("via") or {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}}
        requester = t.get("requester_id")
        updater = requester if k == 0 else (t.get("assignee_id") or requester)
        cid = eid * 64
        h = self._h(51, eid)
        ch = []
        if k == 0:
            body = t.get("description") or ""
            ch.append(self._comment_child(cid, label, via_obj, updater, body, True, eid, ts))
            final = t.get("status")
            first = "new" if final == "new" else "open"
            items = [("subject", t.get("subject")), ("requester_id", requester),
                     ("status", first), ("priority", t.get("priority")), ("type", t.get("type")),
                     ("assignee_id", t.get("assignee_id")), ("group_id", t.get("group_id")),
                     ("organization_id", None if t.get("organization_id") is None else str(t.get("organization_id")))]
            j = 1
            for key, val in items:
                ch.append({"id": cid + j, "via": label, "via_reference_id": None, key: val,
                           "event_type": "Create"})
                j += 1
            tags = t.get("tags") or []
            if tags:
                ch.append({"id": cid + j, "via": label, "via_reference_id": None, "tags": list(tags),
                           "added_tags": list(tags), "removed_tags": [], "event_type": "Create"})
        else:
            body = "Follow-up %d on ticket %d." % (k, tid)
            ch.append(self._comment_child(cid, label, via_obj, updater, body, h % 3 != 0, eid, ts))
            final = t.get("status")

            def st_at(i):
                if i == 0:
                    return "new" if final == "new" else "open"
                if i == n - 1:
                    return final
                return "pending" if i % 2 else "open"
            new, prev = st_at(k), st_at(k - 1)
            if new != prev:
                ch.append({"id": cid + 1, "via": label, "via_reference_id": None, "status": new,
                           "event_type": "Change", "previous_value": prev})
        system = self.fx.event_system_web if label == "Web form" else SYSTEM_NULL
        return {"child_events": ch, "id": eid, "ticket_id": tid, "timestamp": ts,
                "created_at": iso(ts), "updater_id": updater, "via": label,
                "system": system, "event_type": "Audit"}

    @staticmethod
    def strip_comments(ev):
        out = dict(ev)
        ch = []
        for c in ev.get("child_events") or []:
            if c.get("event_type") == "Comment" and "body" in c:
                ch.append({"id": c["id"], "via": ev.get("via"), "via_reference_id": c.get("via_reference_id"),
                           "comment_present": True, "comment_public": bool(c.get("public", True)),
                           "event_type": "Comment"})
            else:
                ch.append(c)
        out["child_events"] = ch
        return out

    # -- ticket metric events (built lazily)
    @property
    def metrics(self):
        if self._metrics is None:
            with self.lock:
                if self._metrics is None:
                    st = Store("ticket_metric_events", self._gen_metric)
                    for s, tid in enumerate(self.t_initial_ids):
                        c, u = self._ticket_cu(tid)
                        b = METRIC_BASE + s * 2
                        st.add_initial(b, c)
                        st.add_initial(b + 1, u)
                    st.finalize()
                    self.next_metric_id = METRIC_BASE + len(self.t_initial_ids) * 2 + 1000
                    self._metrics = st
        return self._metrics

    def _gen_metric(self, mid):
        s, k = divmod(mid - METRIC_BASE, 2)
        tid = self.t_initial_ids[s]
        c, u = self._ticket_cu(tid)
        r = dict(self.fx.metric_event)
        r["id"] = mid
        r["ticket_id"] = tid
        r["metric"] = "reply_time"
        r["instance_id"] = 1
        r["type"] = "activate" if k == 0 else "fulfill"
        r["time"] = iso(c if k == 0 else u)
        return r

    def store(self, res):
        if res == "tickets":
            return self.tickets
        if res == "users":
            return self.users
        if res == "organizations":
            return self.orgs
        if res == "ticket_events":
            return self.events
        if res == "ticket_metric_events":
            return self.metrics
        raise KeyError(res)

    # -- flags after a mutation
    def _refresh_flags(self, res, rid, rec, archived=None):
        st = self.store(res)
        if res == "tickets":
            deleted = rec.get("status") == "deleted"
            if archived is not None:
                (st.archived.add if archived else st.archived.discard)(rid)
        elif res == "users":
            deleted = rec.get("active") is False
        else:
            deleted = bool(rec.get("deleted_at"))
        (st.deleted.add if deleted else st.deleted.discard)(rid)

    # -- mutations
    def _new_event_id(self):
        _ = self.events
        eid = self.next_event_id
        self.next_event_id += 1
        return eid

    def _make_ticket_event(self, tid, at, rec, changes, old, create=False, comment=None):
        eid = self._new_event_id()
        cid = eid * 64
        label = "Web service"
        ch = []
        j = 0
        author = rec.get("assignee_id") or rec.get("requester_id")
        if comment is not None:
            if isinstance(comment, str):
                comment = {"body": comment}
            ch.append(self._comment_child(cid, label, {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                                          comment.get("author_id", author), str(comment.get("body", "")),
                                          bool(comment.get("public", True)), eid, at))
            j += 1
        for key in changes:
            if key in ("updated_at", "generated_timestamp", "url", "id", "created_at"):
                continue
            if j >= 63:
                break
            val = rec.get(key)
            c = {"id": cid + j, "via": label, "via_reference_id": None, key: val}
            if key == "tags":
                prev = (old or {}).get("tags") or []
                c["added_tags"] = [x for x in (val or []) if x not in prev]
                c["removed_tags"] = [x for x in prev if x not in (val or [])]
            if create:
                c["event_type"] = "Create"
            else:
                pv = (old or {}).get(key)
                c["event_type"] = "Change"
                c["previous_value"] = pv if (pv is None or isinstance(pv, (str, list))) else (
                    json.dumps(pv) if isinstance(pv, (dict, bool)) else str(pv))
            ch.append(c)
            j += 1
        return {"child_events": ch, "id": eid, "ticket_id": tid, "timestamp": at,
                "created_at": iso(at), "updater_id": author if author is not None else -1,
                "via": label, "system": dict(SYSTEM_NULL), "event_type": "Audit"}

    def _template_new(self, res, rid, at):
        if res == "tickets":
            r = copy.deepcopy(self.t_tpls[0]) if self.t_tpls else {"id": rid}
            req = self.user_pick[0] if self.user_pick else None
            vals = {"url": "%s/tickets/%d.json" % (self.url_base, rid), "id": rid, "external_id": None,
                    "created_at": iso(at), "updated_at": iso(at), "generated_timestamp": at,
                    "type": None, "subject": "New ticket %d" % rid, "raw_subject": "New ticket %d" % rid,
                    "description": "New ticket %d created by the mock." % rid, "priority": None,
                    "status": "new", "requester_id": req, "submitter_id": req, "assignee_id": None,
                    "organization_id": None, "group_id": None, "collaborator_ids": [],
                    "follower_ids": [], "email_cc_ids": [], "tags": [], "custom_fields": [],
                    "fields": [], "satisfaction_rating": None, "encoded_id": self._encoded_id(rid)}
            for k, v in vals.items():
                if k in r:
                    r[k] = v
            r["generated_timestamp"] = at
            return r
        if res == "users":
            r = copy.deepcopy(self.u_tpl_end)
            r.update({"id": rid, "url": "%s/users/%d.json" % (self.url_base, rid),
                      "name": "New User %d" % rid, "email": "new%d@example.com" % rid,
                      "created_at": iso(at), "updated_at": iso(at), "photo": None,
                      "organization_id": None})
            return r
        r = copy.deepcopy(self.o_tpl)
        r.update({"url": "%s/organizations/%d.json" % (self.url_base, rid), "id": rid,
                  "name": "New Org %d" % rid, "created_at": iso(at), "updated_at": iso(at),
                  "deleted_at": None})
        return r

    def _apply(self, res, rid, op, at, changes, system=False, comment=None, create_missing=False):
        """Compute the new record (and ticket event); returns (rec, ts, event)."""
        st = self.store(res)
        old = None
        if st.has(rid):
            if op == "create" and not create_missing:
                raise ApiError(409, {"error": "RecordExists", "description": "id %d exists" % rid})
            old = st.get(rid)
            rec = copy.deepcopy(old)
            is_new = False
        else:
            if op not in ("create",) and not create_missing:
                raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
            rec = self._template_new(res, rid, at)
            is_new = True
        changes = dict(changes or {})
        if op == "delete":
            if res == "tickets":
                changes.setdefault("status", "deleted")
            elif res == "users":
                changes.setdefault("active", False)
                changes.setdefault("email", None)
            else:
                changes.setdefault("deleted_at", iso(at))
                name = changes.get("name", rec.get("name"))
                if not str(name).startswith("%d_deleted_" % rid):
                    changes["name"] = "%d_deleted_%s" % (rid, name)
        elif op == "scrub":
            if res != "tickets":
                raise ApiError(400, {"error": "scrub is for tickets only"})
            changes.setdefault("subject", "SCRUBBED")
            changes.setdefault("raw_subject", "SCRUBBED")
            changes.setdefault("description", "X")
            system = True
        if (res == "tickets" and "custom_fields" in changes and "fields" not in changes
                and "fields" in rec):
            changes["fields"] = copy.deepcopy(changes["custom_fields"])
        rec.update(changes)
        event = None
        if res == "tickets":
            rec["generated_timestamp"] = at
            if not system and "updated_at" not in changes:
                rec["updated_at"] = iso(at)
            if is_new and "created_at" not in changes:
                rec["created_at"] = iso(at)
            ts = at
            if not system:
                if is_new:
                    keys = ["subject", "requester_id", "status", "priority", "type", "assignee_id",
                            "group_id", "organization_id"] + [k for k in changes if k not in (
                                "subject", "requester_id", "status", "priority", "type",
                                "assignee_id", "group_id", "organization_id")]
                    if comment is None:
                        comment = {"body": rec.get("description") or ""}
                    event = self._make_ticket_event(rid, at, rec, keys, None, create=True, comment=comment)
                else:
                    event = self._make_ticket_event(rid, at, rec, list(changes), old, comment=comment)
        else:
            if "updated_at" not in changes:
                rec["updated_at"] = iso(at)
            if is_new and "created_at" not in changes:
                rec["created_at"] = iso(at)
            ts = parse_iso(rec["updated_at"])
        return rec, ts, event

    def _next_id(self, res):
        st = self.store(res)
        if not st.ids:
            return self.gen_ticket_base if res == "tickets" else (GEN_USER_BASE if res == "users" else GEN_ORG_BASE)
        return st.ids[-1] + 1

    def mutate(self, res, spec, now):
        if res not in ("tickets", "users", "organizations"):
            raise ApiError(400, {"error": "mutations are supported for tickets, users, organizations"})
        if not isinstance(spec, dict):
            raise ApiError(400, {"error": "body must be a JSON object"})
        op = spec.get("op", "update")
        at = int(spec["at"]) if spec.get("at") is not None else int(now)
        changes = spec.get("changes") or {}
        if not isinstance(changes, dict):
            raise ApiError(400, {"error": "changes must be an object"})
        archived = spec.get("archived")
        st = self.store(res)
        with self.lock:
            if op == "bulk_same_second":
                count = int(spec.get("count", 1000))
                ids = [int(i) for i in spec.get("ids") or []] or st.ids[:count]
                ids = list(ids)
                nid = self._next_id(res)
                while len(ids) < count:
                    ids.append(nid)
                    nid += 1
                items, events = [], []
                for rid in ids:
                    rec, ts, ev = self._apply(res, rid, "update", at, changes, system=bool(spec.get("system")),
                                              create_missing=True)
                    items.append((rid, rec, ts))
                    if ev is not None:
                        events.append((ev["id"], ev, ev["timestamp"]))
                st.put_many(items)
                for rid, rec, ts in items:
                    self._refresh_flags(res, rid, rec, archived)
                if events:
                    self.events.put_many(events)
                return {"ok": True, "op": op, "at": at, "count": len(ids), "ids": ids}
            if op not in ("update", "create", "delete", "scrub"):
                raise ApiError(400, {"error": "unknown op %r" % op})
            rid = spec.get("id")
            if rid is None:
                if op != "create":
                    raise ApiError(400, {"error": "id is required"})
                rid = self._next_id(res)
            rid = int(rid)
            rec, ts, ev = self._apply(res, rid, op, at, changes, system=bool(spec.get("system")),
                                      comment=spec.get("comment"))
            st.put(rid, rec, ts)
            self._refresh_flags(res, rid, rec, archived)
            if ev is not None:
                self.events.put(ev["id"], ev, ev["timestamp"])
            return {"ok": True, "op": op, "id": rid, "at": at, "record": rec,
                    "event_id": ev["id"] if ev else None}

    # -- record forms
    def export_record(self, res, rid, comment_events=True):
        rec = self.store(res).get(rid)
        if res == "ticket_events" and not comment_events:
            return self.strip_comments(rec)
        return rec

    def export_json(self, res, rid, comment_events=True):
        """dumps(export_record(...)), cached in the store."""
        if res == "ticket_events" and not comment_events:
            return self.store(res).json(rid, "no_comment_events",
                                        lambda i: self.export_record(res, i, False))
        return self.store(res).json(rid)

    def show_record(self, res, rid):
        rec = self.store(res).get(rid)
        if res == "tickets" and "generated_timestamp" in rec:
            rec = {k: v for k, v in rec.items() if k != "generated_timestamp"}
        return rec


# ---------------------------------------------------------------- faults / rate limits

class Fault:
    def __init__(self, spec, fid):
        if not isinstance(spec, dict):
            raise ApiError(400, {"error": "a fault must be a JSON object"})
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ApiError(400, {"error": "unknown fault kind %r" % kind, "kinds": list(FAULT_KINDS)})
        self.id = fid
        self.kind = kind
        self.spec = dict(spec)
        self.path = normalize_prefix(spec.get("path") or "/api/v2")
        q = spec.get("query") or {}
        if not isinstance(q, dict):
            raise ApiError(400, {"error": "query must be an object"})
        self.query = {str(k): v for k, v in q.items()}
        self.after = int(spec.get("after", 0) or 0)
        self.times = int(spec.get("times", 1) if spec.get("times", 1) is not None else 1)
        self.seen = 0
        self.applied = 0

    def matches(self, path, query):
        if not path.startswith(self.path):
            return False
        for k, v in self.query.items():
            if k not in query:
                return False
            if v == "*":
                continue
            want = ("true" if v else "false") if isinstance(v, bool) else str(v)
            if str(query[k]) != want:
                return False
        if self.spec.get("min_per_page") is not None:
            pp = query.get("per_page")
            if pp is not None:
                try:
                    if int(pp) < int(self.spec["min_per_page"]):
                        return False
                except ValueError:
                    pass
        return True

    def remaining(self):
        return -1 if self.times < 0 else max(0, self.times - self.applied)

    def describe(self):
        d = dict(self.spec)
        d.update({"id": self.id, "kind": self.kind, "path": self.path, "seen": self.seen,
                  "applied": self.applied, "remaining": self.remaining()})
        return d


def normalize_prefix(p):
    p = str(p)
    if not p.startswith("/"):
        p = "/" + p
    if not (p.startswith("/api/v2") or p.startswith("/__mock")):
        p = "/api/v2" + p
    if p.endswith(".json"):
        p = p[:-5]
    return p


class Bucket:
    def __init__(self, limit, window):
        self.limit = int(limit)
        self.window = max(1, int(window))
        self.win = None
        self.used = 0

    def roll(self, now):
        w = int(now // self.window)
        if w != self.win:
            self.win = w
            self.used = 0

    def reset_in(self, now):
        self.roll(now)
        return max(1, int(math.ceil((self.win + 1) * self.window - now)))

    def ok(self, now):
        self.roll(now)
        return self.limit <= 0 or self.used < self.limit

    def remaining(self):
        if self.limit <= 0:
            return 100000
        return max(0, self.limit - self.used)

    def total(self):
        return self.limit if self.limit > 0 else 100000


# ---------------------------------------------------------------- mock state

class Mock:
    def __init__(self, cfg, quiet=True):
        self.base_cfg = dict(DEFAULTS)
        self.base_cfg.update(cfg or {})
        self.quiet = quiet
        self.lock = threading.RLock()
        self._reset(self.base_cfg)

    def _reset(self, cfg):
        self.cfg = dict(cfg)
        self.fx = Fixtures.get(self.cfg["fixtures"])
        self.offset = 0.0
        self.requests = []
        self.seq = 0
        self.faults = []
        self.fault_seq = 0
        self.forbidden = []
        self.account = Account(self.fx, self.cfg, time.time())
        self._make_buckets()

    def _make_buckets(self):
        rl = int(self.cfg["rate_limit"])
        self.export_bucket = Bucket(rl, self.cfg["rate_window"])
        self.account_bucket = Bucket(int(self.cfg["account_rate_limit"]) if rl > 0 else 0,
                                     self.cfg["rate_window"])

    def now(self):
        return time.time() + self.offset

    def cutoff(self):
        return int(self.now()) - int(self.cfg["holdback"])

    # -- control
    def reset(self, body):
        cfg = dict(self.base_cfg)
        for k in RESET_KEYS:
            if k in body and body[k] is not None:
                cfg[k] = int(body[k]) if k in INT_KEYS else str(body[k])
        with self.lock:
            self._reset(cfg)
        return {"ok": True, "config": self.public_config()}

    def configure(self, body):
        with self.lock:
            for k in ("holdback", "rate_limit", "rate_window", "account_rate_limit"):
                if k in body and body[k] is not None:
                    self.cfg[k] = int(body[k])
            if any(k in body for k in ("rate_limit", "rate_window", "account_rate_limit")):
                self._make_buckets()
            if "forbidden_prefixes" in body:
                fp = body["forbidden_prefixes"] or []
                if isinstance(fp, str):
                    fp = [fp]
                self.forbidden = [normalize_prefix(p) for p in fp]
            for k in ("email", "token", "oauth_token"):
                if k in body and body[k] is not None:
                    self.cfg[k] = str(body[k])
        return {"ok": True, "config": self.public_config()}

    def public_config(self):
        c = {k: v for k, v in self.cfg.items() if k not in ("fixtures",)}
        c["forbidden_prefixes"] = list(self.forbidden)
        return c

    def add_faults(self, body):
        specs = body if isinstance(body, list) else [body]
        out = []
        with self.lock:
            new = []
            for s in specs:
                self.fault_seq += 1
                new.append(Fault(s, self.fault_seq))
            self.faults.extend(new)
            out = [f.describe() for f in new]
        return {"ok": True, "faults": out}

    def pick_fault(self, path, query):
        with self.lock:
            chosen = None
            for f in self.faults:
                if f.matches(path, query):
                    f.seen += 1
                    if chosen is None and f.seen > f.after and (f.times < 0 or f.applied < f.times):
                        chosen = f
                        f.applied += 1
            return chosen

    def log(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.requests.append(entry)
            if len(self.requests) > 200000:
                del self.requests[:100000]
        return entry


# ---------------------------------------------------------------- API

class Api:
    """Handles one /api/v2 request; produces a Resp."""

    def __init__(self, mock, method, path, query, headers, host):
        self.mock = mock
        self.acc = mock.account
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.base = "http://%s" % host

    # -- auth
    def auth_kind(self):
        h = self.headers.get("Authorization")
        if not h:
            return "none"
        cfg = self.mock.cfg
        parts = h.strip().split(None, 1)
        if len(parts) != 2:
            return "bad"
        scheme, val = parts[0].lower(), parts[1].strip()
        if scheme == "basic":
            try:
                dec = base64.b64decode(val.encode("ascii"), validate=True).decode("utf-8")
            except (ValueError, UnicodeError, binascii.Error):
                return "bad"
            if dec == "%s/token:%s" % (cfg["email"], cfg["token"]):
                return "basic"
            return "bad"
        if scheme == "bearer":
            return "bearer" if val == cfg["oauth_token"] else "bad"
        return "bad"

    def unauthorized(self):
        h = self.headers.get("Authorization") or ""
        if h.strip().lower().startswith("bearer"):
            body = self.mock.fx.error_body("unauthorized_oauth")
        else:
            body = self.mock.fx.error_body("unauthorized_basic_or_api_token")
        return Resp(401, body, headers=[("WWW-Authenticate", 'Basic realm="Web Password"')])

    # -- rate limit
    def rate_headers(self, is_export, now):
        ab, eb = self.mock.account_bucket, self.mock.export_bucket
        hs = [("x-rate-limit", str(ab.total())), ("x-rate-limit-remaining", str(ab.remaining())),
              ("ratelimit-limit", str(ab.total())), ("ratelimit-remaining", str(ab.remaining())),
              ("ratelimit-reset", str(ab.reset_in(now)))]
        if is_export:
            hs.append(("zendesk-ratelimit-incremental-exports", "total=%d; remaining=%d; resets=%d" % (
                eb.total(), eb.remaining(), eb.reset_in(now))))
        return hs

    def rate_check(self, is_export, now):
        m = self.mock
        with m.lock:
            ab, eb = m.account_bucket, m.export_bucket
            blocked = None
            if is_export and not eb.ok(now):
                blocked = eb
            elif not ab.ok(now):
                blocked = ab
            if blocked is None:
                ab.used += 1
                if is_export:
                    eb.used += 1
                return None, self.rate_headers(is_export, now)
            hs = self.rate_headers(is_export, now)
            retry = blocked.reset_in(now)
        r = Resp(429, RATE_LIMIT_TEXT, content_type="text/plain; charset=utf-8",
                 headers=[("Retry-After", str(retry))] + hs)
        return r, hs

    # -- main
    def handle(self, auth):
        now = self.mock.now()
        p = self.path
        is_json = p.endswith(".json")
        rp = p[:-5] if is_json else p
        if not rp.startswith("/api/v2/"):
            return Resp(404, self.mock.fx.error_body("invalid_endpoint"))
        parts = [x for x in rp[len("/api/v2/"):].split("/") if x]
        if auth not in ("basic", "bearer"):
            if parts == ["users", "me"] and self.method == "GET":
                return Resp(200, {"user": {"id": None, "url": None, "name": "Anonymous user",
                                           "email": "invalid@example.com", "role": "end-user",
                                           "active": True}})
            return self.unauthorized()
        is_export = bool(parts) and parts[0] == "incremental"
        limited, hs = self.rate_check(is_export, now)
        if limited is not None:
            return limited
        for pref in self.mock.forbidden:
            if p.startswith(pref):
                r = Resp(403, self.mock.fx.error_body("forbidden"), headers=hs)
                return r
        try:
            if self.method != "GET":
                raise ApiError(404, self.mock.fx.error_body("invalid_endpoint"))
            body = self.route(parts, now)
            r = Resp(200, body, headers=hs)
        except ApiError as e:
            r = Resp(e.status, e.body, headers=hs + e.headers)
        return r

    def route(self, parts, now):
        n = len(parts)
        if parts[0] == "incremental":
            if n == 3 and parts[2] == "cursor" and parts[1] in ("tickets", "users"):
                return self.cursor_export(parts[1], now)
            if n == 2 and parts[1] in RESOURCES:
                return self.time_export(parts[1], now)
            raise ApiError(404, self.mock.fx.error_body("invalid_endpoint"))
        if parts[0] in SINGULAR:
            res = parts[0]
            if n == 1:
                return self.list_records(res)
            if n == 2 and parts[1] == "show_many":
                return self.show_many(res)
            if n == 2 and res == "users" and parts[1] == "me":
                acc = self.acc
                with acc.lock:
                    if acc.me_id is None:
                        raise ApiError(404, self.mock.fx.error_body("record_not_found"))
                    return {"user": acc.show_record("users", acc.me_id)}
            if n == 2:
                return self.show(res, parts[1])
        raise ApiError(404, self.mock.fx.error_body("invalid_endpoint"))

    # -- parameters
    def per_page(self):
        v = self.query.get("per_page")
        if v is None:
            return None
        try:
            i = int(v)
        except ValueError:
            raise ApiError(400, {"error": "InvalidPaginationParameter", "description": "per_page is not valid"})
        if i < 1:
            raise ApiError(400, {"error": "InvalidPaginationParameter", "description": "per_page is not valid"})
        return i

    def start_time(self, now):
        v = self.query.get("start_time")
        if v is None:
            return None
        try:
            st = int(v)
        except ValueError:
            raise ApiError(400, {"error": "InvalidValue", "description": "start_time is not a valid integer"})
        if st > int(now) - int(self.mock.cfg["holdback"]):
            raise ApiError(422, {"error": "InvalidValue",
                                 "description": "Too recent start_time. Use a start_time older than 1 minute"})
        return st

    def includes(self):
        return [x.strip() for x in (self.query.get("include") or "").split(",") if x.strip()]

    def ticket_filter(self, res):
        if res == "tickets" and _truthy(self.query.get("exclude_deleted", "false")):
            deleted = self.acc.tickets.deleted
            return lambda rid: rid not in deleted
        return None

    def sideloads(self, res, records):
        out = []
        if res != "tickets":
            return out
        acc = self.acc
        for inc in self.includes():
            if inc == "users":
                seen, lst = set(), []
                for t in records:
                    for k in ("requester_id", "submitter_id", "assignee_id"):
                        uid = t.get(k)
                        if isinstance(uid, int) and uid not in seen and acc.users.has(uid):
                            seen.add(uid)
                            lst.append(acc.users.get(uid))
                out.append(("users", lst))
            elif inc == "organizations":
                seen, lst = set(), []
                for t in records:
                    oid = t.get("organization_id")
                    if isinstance(oid, int) and oid not in seen and acc.orgs.has(oid):
                        seen.add(oid)
                        lst.append(acc.orgs.get(oid))
                out.append(("organizations", lst))
            elif inc == "metric_sets":
                out.append(("metric_sets", []))
        return out

    # -- exports
    @staticmethod
    def _scan(keys, i, cutoff, filt, limit, rows):
        n = len(keys)
        while i < n and len(rows) < limit:
            k = keys[i]
            if k[0] > cutoff:
                break
            if filt is None or filt(k[1]):
                rows.append(k)
            i += 1
        return i

    @staticmethod
    def _more(keys, i, cutoff, filt):
        n = len(keys)
        while i < n:
            k = keys[i]
            if k[0] > cutoff:
                return False
            if filt is None or filt(k[1]):
                return True
            i += 1
        return False

    def cursor_export(self, res, now):
        q = self.query
        has_start, has_cursor = "start_time" in q, "cursor" in q
        if has_start and has_cursor:
            raise ApiError(400, {"error": "InvalidPaginationParameter",
                                 "description": "start_time and cursor cannot be used together"})
        if not has_start and not has_cursor:
            raise ApiError(400, {"error": "ParameterMissing", "description": "Parameter start_time is required"})
        pp = self.per_page()
        limit = min(pp or 1000, 1000)
        cutoff = int(now) - int(self.mock.cfg["holdback"])
        acc = self.acc
        with acc.lock:
            st = acc.store(res)
            if has_cursor:
                pos = decode_cursor(q["cursor"])
                if pos is None:
                    raise ApiError(400, {"error": "InvalidPaginationParameter", "description": "cursor is not valid"})
                i = bisect.bisect_right(st.keys, pos)
            else:
                i = bisect.bisect_left(st.keys, (self.start_time(now),))
            filt = self.ticket_filter(res)
            rows = []
            i = self._scan(st.keys, i, cutoff, filt, limit, rows)
            eos = not self._more(st.keys, i, cutoff, filt)
            records_json = [acc.export_json(res, rid) for _, rid in rows]
            side = self.sideloads(res, [st.get(rid) for _, rid in rows]) if self.includes() else []
        if rows:
            after = encode_cursor(*rows[-1])
        elif has_cursor:
            after = q["cursor"]
        else:
            after = None
        after_url = None
        if after is not None:
            after_url = "%s%s?cursor=%s" % (self.base, self.path, quote(after, safe=""))
            if pp is not None:
                after_url += "&per_page=%d" % pp
        body = {}
        for k, v in side:
            body[k] = v
        body.update({"after_url": after_url, "before_url": None, "after_cursor": after,
                     "before_cursor": None, "end_of_stream": eos})
        return dumps_page(res, records_json, body)

    def time_export(self, res, now):
        q = self.query
        if "start_time" not in q:
            raise ApiError(400, {"error": "ParameterMissing", "description": "Parameter start_time is required"})
        st_time = self.start_time(now)
        pp = self.per_page()
        limit = min(pp or 1000, 1000)
        cutoff = int(now) - int(self.mock.cfg["holdback"])
        acc = self.acc
        comment_events = "comment_events" in self.includes()
        with acc.lock:
            st = acc.store(res)
            keys = st.keys
            filt = self.ticket_filter(res)
            i = bisect.bisect_left(keys, (st_time,))
            rows = []
            i = self._scan(keys, i, cutoff, filt, limit + 1, rows)
            if len(rows) <= limit:
                eos = True
                end_time = rows[-1][0] if rows else None
            else:
                extra = rows.pop()
                last = rows[-1][0]
                if limit < 1000:
                    if extra[0] == last:
                        rows.append(extra)
                        n = len(keys)
                        while i < n and keys[i][0] == last:
                            if filt is None or filt(keys[i][1]):
                                rows.append(keys[i])
                            i += 1
                        more = self._more(keys, i, cutoff, filt)
                    else:
                        more = True
                    if more:
                        eos, end_time = False, last + 1
                    else:
                        eos, end_time = True, last
                else:
                    eos, end_time = False, last
            records_json = [acc.export_json(res, rid, comment_events) for _, rid in rows]
            # only side-loads need the records as objects ("comment_events" is no side-load)
            side = (self.sideloads(res, [acc.export_record(res, rid, comment_events) for _, rid in rows])
                    if [i for i in self.includes() if i != "comment_events"] else [])
        next_page = None
        if end_time is not None:
            qs = []
            if pp is not None:
                qs.append("per_page=%d" % pp)
            qs.append("start_time=%d" % end_time)
            next_page = "%s%s?%s" % (self.base, self.path, "&".join(qs))
        body = {}
        for k, v in side:
            body[k] = v
        if res == "tickets":
            body.update({"count": len(records_json), "end_of_stream": eos, "next_page": next_page,
                         "end_time": end_time})
        else:
            body.update({"next_page": next_page, "count": len(records_json), "end_of_stream": eos,
                         "end_time": end_time})
        return dumps_page(res, records_json, body)

    # -- show / show_many / lists
    def _visible_for_show(self, res, st, rid):
        if not st.has(rid):
            return False
        if res in ("tickets", "organizations") and rid in st.deleted:
            return False
        return True

    def show(self, res, sid):
        acc = self.acc
        try:
            rid = int(sid)
        except ValueError:
            raise ApiError(404, self.mock.fx.error_body("record_not_found"))
        with acc.lock:
            st = acc.store(res)
            if not self._visible_for_show(res, st, rid):
                raise ApiError(404, self.mock.fx.error_body("record_not_found"))
            return {SINGULAR[res]: acc.show_record(res, rid)}

    def show_many(self, res):
        raw = self.query.get("ids")
        if raw is None:
            raise ApiError(400, {"error": "ParameterMissing", "description": "Parameter ids is required"})
        vals = [x.strip() for x in raw.split(",") if x.strip()]
        if len(vals) > 100:
            body = self.mock.fx.error_body("too_many_values")
            body["description"] = "Parameter ids cannot specify more than 100 values"
            raise ApiError(400, body)
        acc = self.acc
        out, seen = [], set()
        with acc.lock:
            st = acc.store(res)
            for v in vals:
                try:
                    rid = int(v)
                except ValueError:
                    continue
                if rid in seen or not self._visible_for_show(res, st, rid):
                    continue
                seen.add(rid)
                out.append(acc.show_record(res, rid))
        return {res: out, "next_page": None, "previous_page": None, "count": len(out)}

    def list_records(self, res):
        q = self.query
        acc = self.acc
        order = "nice_id" if res == "tickets" else "id"
        if "page[size]" in q:
            try:
                size = int(q["page[size]"])
            except ValueError:
                raise ApiError(400, {"error": "InvalidPaginationParameter", "description": "page[size] is not valid"})
            if size > 100:
                raise ApiError(400, self.mock.fx.error_body("page_size_too_large_list_endpoint"))
            if size < 1:
                raise ApiError(400, {"error": "InvalidPaginationParameter", "description": "page[size] is not valid"})
            with acc.lock:
                st = acc.store(res)
                ids = st.ids
                page = []
                if q.get("page[after]"):
                    aid = decode_list_cursor(order, q["page[after]"])
                    if aid is None:
                        raise ApiError(400, self.mock.fx.error_body("invalid_cursor_list_endpoint"))
                    i = bisect.bisect_right(ids, aid)
                    while i < len(ids) and len(page) <= size:
                        if not st.hidden(ids[i]):
                            page.append(ids[i])
                        i += 1
                    has_more = len(page) > size
                    page = page[:size]
                elif q.get("page[before]"):
                    bid = decode_list_cursor(order, q["page[before]"])
                    if bid is None:
                        raise ApiError(400, {"error": "InvalidPaginationParameter",
                                             "description": "page[before] is not valid"})
                    i = bisect.bisect_left(ids, bid) - 1
                    while i >= 0 and len(page) < size:
                        if not st.hidden(ids[i]):
                            page.append(ids[i])
                        i -= 1
                    page.reverse()
                    has_more = True
                else:
                    i = 0
                    while i < len(ids) and len(page) <= size:
                        if not st.hidden(ids[i]):
                            page.append(ids[i])
                        i += 1
                    has_more = len(page) > size
                    page = page[:size]
                records = [acc.show_record(res, rid) for rid in page]
            ac = encode_list_cursor(order, page[-1]) if page else None
            bc = encode_list_cursor(order, page[0]) if page else None
            link = "%s%s?%s=%s&page%%5Bsize%%5D=%d"
            body = {res: records,
                    "meta": {"has_more": has_more, "after_cursor": ac, "before_cursor": bc},
                    "links": {"prev": (link % (self.base, self.path, "page%5Bbefore%5D", quote(bc, safe=""), size))
                              if bc else None,
                              "next": (link % (self.base, self.path, "page%5Bafter%5D", quote(ac, safe=""), size))
                              if ac else None}}
            return body
        # offset pagination
        try:
            page_no = int(q.get("page", 1))
            per = int(q.get("per_page", 100))
        except ValueError:
            raise ApiError(400, {"error": "InvalidPaginationParameter", "description": "page is not valid"})
        per = max(1, min(per, 100))
        page_no = max(1, page_no)
        with acc.lock:
            st = acc.store(res)
            vis = [i for i in st.ids if not st.hidden(i)]
            chunk = vis[(page_no - 1) * per: page_no * per]
            records = [acc.show_record(res, rid) for rid in chunk]
        total = len(vis)
        nxt = ("%s%s?page=%d&per_page=%d" % (self.base, self.path, page_no + 1, per)
               if page_no * per < total else None)
        prev = ("%s%s?page=%d&per_page=%d" % (self.base, self.path, page_no - 1, per)
                if page_no > 1 else None)
        return {res: records, "next_page": nxt, "previous_page": prev, "count": total}


def fault_response(f, fx):
    s = f.spec
    k = f.kind
    extra = [(str(a), str(b)) for a, b in (s.get("headers") or {}).items()]

    def retry_hdr(default):
        ra = s.get("retry_after", default) if "retry_after" in s else default
        if ra is None:
            return []
        return [("Retry-After", str(ra))]

    def body_or(default):
        return s["body"] if "body" in s else default

    def ct_for(body, default):
        if "content_type" in s:
            return s["content_type"]
        return default if isinstance(body, (str, bytes)) else JSON_CT

    if k == "429":
        b = body_or(RATE_LIMIT_TEXT)
        return Resp(429, b, ct_for(b, "text/plain; charset=utf-8"), retry_hdr(1) + extra)
    if k == "500":
        b = body_or(fx.error_body("server_error"))
        return Resp(500, b, ct_for(b, "text/plain; charset=utf-8"), retry_hdr(None) + extra)
    if k == "502":
        b = body_or("")
        return Resp(502, b, ct_for(b, "text/html"), retry_hdr(None) + extra)
    if k == "503":
        b = body_or(HTML_503)
        return Resp(503, b, ct_for(b, "text/html"), retry_hdr(None) + extra)
    if k == "504":
        b = body_or("upstream request timeout")
        return Resp(504, b, ct_for(b, "text/plain"), retry_hdr(None) + extra)
    if k == "html_200":
        b = body_or(HTML_200)
        return Resp(200, b, ct_for(b, "text/html; charset=utf-8"), extra)
    if k == "bad_cursor":
        return Resp(400, {"error": "InvalidPaginationParameter", "description": "cursor is not valid"},
                    JSON_CT, extra)
    if k == "status":
        b = body_or("")
        return Resp(int(s.get("status", 500)), b, ct_for(b, "text/plain; charset=utf-8"),
                    retry_hdr(None) + extra)
    if k == "json_body":
        b = body_or("{}")
        return Resp(200, b, s.get("content_type", JSON_CT), extra)
    raise AssertionError(k)


# ---------------------------------------------------------------- control API

def control(mock, method, path, query, body):
    parts = [x for x in path[len("/__mock"):].split("/") if x]
    if not parts:
        raise ApiError(404, {"error": "unknown control endpoint"})
    head = parts[0]
    if head == "health" and method == "GET":
        return {"ok": True}
    if head == "reset" and method == "POST":
        return mock.reset(body or {})
    if head == "config":
        if method == "POST":
            return mock.configure(body or {})
        return {"ok": True, "config": mock.public_config()}
    if head == "requests":
        if method == "DELETE" or (method == "POST" and parts[1:] == ["clear"]):
            with mock.lock:
                mock.requests = []
            return {"ok": True}
        if method == "GET":
            with mock.lock:
                return list(mock.requests)
    if head == "faults":
        if method == "DELETE" or (method == "POST" and parts[1:] == ["clear"]):
            with mock.lock:
                mock.faults = []
            return {"ok": True}
        if method == "POST":
            return mock.add_faults(body if body is not None else {})
        if method == "GET":
            with mock.lock:
                return [f.describe() for f in mock.faults]
    if head == "mutate" and method == "POST" and len(parts) == 2:
        return mock.account.mutate(parts[1], body or {}, mock.now())
    if head == "account" and method == "GET" and len(parts) == 2:
        res = parts[1]
        if res not in RESOURCES:
            raise ApiError(404, {"error": "unknown resource %r" % res})
        acc = mock.account
        vis = _truthy(query.get("visible", "0"))
        cutoff = mock.cutoff()
        with acc.lock:
            st = acc.store(res)
            # bytes equal to dumps() of the list, from the cached records
            return b"[" + b",".join(acc.export_json(res, rid) for rid in st.ids
                                    if not vis or st.ts[rid] <= cutoff) + b"]"
    if head == "clock":
        if method == "POST":
            b = body or {}
            with mock.lock:
                if b.get("set_offset") is not None:
                    mock.offset = float(b["set_offset"])
                if b.get("advance") is not None:
                    mock.offset += float(b["advance"])
                if b.get("set_now") is not None:
                    mock.offset = float(b["set_now"]) - time.time()
        now = mock.now()
        return {"now": int(now), "now_float": now, "offset": mock.offset}
    raise ApiError(404, {"error": "unknown control endpoint %s %s" % (method, path)})


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def version_string(self):
        return "nginx"

    def log_message(self, fmt, *args):
        if not self.server.mock.quiet:
            sys.stderr.write("mock: %s - %s\n" % (self.address_string(), fmt % args))

    def date_time_string(self, timestamp=None):
        return formatdate(self.server.mock.now(), usegmt=True)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self, method):
        mock = self.server.mock
        try:
            u = urlsplit(self.path)
            path = u.path
            query = {}
            for k, v in parse_qsl(u.query, keep_blank_values=True):
                query.setdefault(k, v)
            raw = self._read_body()
            if path == "/__mock" or path.startswith("/__mock/"):
                self._control(mock, method, path, query, raw)
                return
            self._api(mock, method, path, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # pragma: no cover - defensive
            traceback.print_exc()
            try:
                self._send(Resp(500, {"error": "MockInternalError"}))
            except Exception:
                pass
            self.close_connection = True

    def _control(self, mock, method, path, query, raw):
        try:
            body = None
            if raw.strip():
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError as e:
                    raise ApiError(400, {"error": "invalid JSON body: %s" % e})
            out = control(mock, method, path, query, body)
            self._send(Resp(200, out))
        except ApiError as e:
            self._send(Resp(e.status, e.body))
        except (ValueError, TypeError, KeyError) as e:
            self._send(Resp(400, {"error": "%s: %s" % (type(e).__name__, e)}))

    def _api(self, mock, method, path, query):
        api = Api(mock, method, path, query, self.headers,
                  self.headers.get("Host") or "%s:%d" % self.server.server_address[:2])
        auth = api.auth_kind()
        entry = mock.log({"seq": 0, "method": method, "path": path, "query": dict(query),
                          "status": None, "fault": None, "auth": auth, "time": int(mock.now()),
                          "time_float": mock.now()})
        fault = mock.pick_fault(path, query) if path.startswith("/api/v2") else None
        if fault is not None:
            entry["fault"] = fault.kind
            k = fault.kind
            if k == "reset":
                self._rst()
                return
            if k == "slow":
                time.sleep(float(fault.spec.get("delay", 2)))
            elif k not in PASS_THROUGH_KINDS:
                r = fault_response(fault, mock.fx)
                self._add_rate_headers(mock, api, path, r)
                entry["status"] = r.status
                self._send(r)
                return
        r = api.handle(auth)
        if fault is not None:
            if fault.kind in ("truncated", "reset_mid_body"):
                r.delivery = fault.kind
                if fault.kind == "reset_mid_body" and "bytes" in fault.spec:
                    r.cut = int(fault.spec["bytes"])
            elif fault.kind == "headers":
                over = {str(a).lower(): (str(a), str(b)) for a, b in (fault.spec.get("headers") or {}).items()}
                r.headers = [h for h in r.headers if h[0].lower() not in over] + list(over.values())
        self._add_rate_headers(mock, api, path, r)
        entry["status"] = r.status
        self._send(r)

    def _add_rate_headers(self, mock, api, path, r):
        have = {k.lower() for k, _ in r.headers}
        with mock.lock:
            hs = api.rate_headers(path.startswith("/api/v2/incremental"), mock.now())
        r.headers.extend(h for h in hs if h[0].lower() not in have)

    def _rst(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _send(self, r):
        body = r.body
        ae = self.headers.get("Accept-Encoding") or ""
        headers = list(r.headers)
        if body and "gzip" in [x.split(";")[0].strip().lower() for x in ae.split(",")]:
            body = gzip_body(body)
            headers.append(("Content-Encoding", "gzip"))
            headers.append(("Vary", "Accept-Encoding"))
        self.send_response(r.status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if r.delivery == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        elif r.delivery == "reset_mid_body":
            cut = getattr(r, "cut", max(1, len(body) // 4))
            self.wfile.write(body[: min(cut, max(0, len(body) - 1))])
            self.wfile.flush()
            time.sleep(0.05)
            self._rst()
        else:
            if self.command != "HEAD":
                self.wfile.write(body)


class MockHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, cfg=None, quiet=True):
        self.mock = Mock(cfg or {}, quiet=quiet)
        ThreadingHTTPServer.__init__(self, addr, Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return "http://%s:%d" % (host, port)


def start_in_thread(cfg=None, host="127.0.0.1", port=0, quiet=True):
    """Start a mock on host:port (0 = free port) in a daemon thread; returns the server.

    Stop it with server.shutdown(); server.server_close()."""
    srv = MockHTTPServer((host, port), cfg, quiet=quiet)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    srv.thread = t
    return srv


def build_parser():
    p = argparse.ArgumentParser(description="Mock Zendesk Support API server (stdlib only).")
    p.add_argument("--host", default=DEFAULTS["host"], help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULTS["port"], help="port (0 = pick a free one)")
    p.add_argument("--holdback", type=int, default=DEFAULTS["holdback"],
                   help="export hold-back in seconds (default 60)")
    p.add_argument("--rate-limit", type=int, default=DEFAULTS["rate_limit"],
                   help="incremental-export requests per window (default 10; 0 = no rate limiting at all)")
    p.add_argument("--rate-window", type=int, default=DEFAULTS["rate_window"],
                   help="rate-limit window in seconds (default 60)")
    p.add_argument("--account-rate-limit", type=int, default=DEFAULTS["account_rate_limit"],
                   help="account bucket: requests per window over all /api/v2 paths, exports "
                        "included (default 700; 0 = unlimited)")
    p.add_argument("--tickets", type=int, default=DEFAULTS["tickets"])
    p.add_argument("--users", type=int, default=DEFAULTS["users"])
    p.add_argument("--organizations", type=int, default=DEFAULTS["organizations"])
    p.add_argument("--events-per-ticket", type=int, default=DEFAULTS["events_per_ticket"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--email", default=DEFAULTS["email"])
    p.add_argument("--token", default=DEFAULTS["token"])
    p.add_argument("--oauth-token", default=DEFAULTS["oauth_token"])
    p.add_argument("--subdomain", default=DEFAULTS["subdomain"])
    p.add_argument("--fixtures", default=DEFAULTS["fixtures"], help="fixture directory")
    p.add_argument("--pidfile", default=None, help="write the server pid to this file")
    p.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    cfg = {k: getattr(args, k) for k in DEFAULTS}
    srv = MockHTTPServer((args.host, args.port), cfg, quiet=args.quiet)

    def _term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _term)
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    host, port = srv.server_address[:2]
    sys.stdout.write("zendesk mock listening on http://%s:%d\n" % (host, port))
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
