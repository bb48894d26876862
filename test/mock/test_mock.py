"""Tests for the zendesk mock server (stdlib unittest).

Run: python3 -m unittest discover -s test/mock -p 'test_*.py'
"""

import base64
import email.utils
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import unittest
from urllib.parse import quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zendesk_mock as zm  # noqa: E402

FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures", "zendesk"))
EMAIL, TOKEN, OAUTH = "admin@example.com", "test-token", "test-oauth"
BASIC = "Basic " + base64.b64encode(("%s/token:%s" % (EMAIL, TOKEN)).encode()).decode()


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return json.load(f)


def cursor_of(ts, rid):
    return base64.b64encode(("%d.0||%d|" % (ts, rid)).encode()).decode()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())


class MockTestCase(unittest.TestCase):
    srv = None

    @classmethod
    def setUpClass(cls):
        if MockTestCase.srv is None:
            MockTestCase.srv = zm.start_in_thread({"rate_limit": 0}, port=0, quiet=True)
        cls.host, cls.port = MockTestCase.srv.server_address[:2]

    def setUp(self):
        self.reset()

    # -- helpers
    def conn(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, auth=BASIC, conn=None):
        c = conn or self.conn()
        hs = dict(headers or {})
        if auth:
            hs["Authorization"] = auth
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            hs["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=hs)
        r = c.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if conn is None:
            c.close()
        return Response(r.status, hdrs, raw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def ctl(self, method, path, body=None):
        r = self.request(method, "/__mock/" + path, body=body, auth=None)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def reset(self, **kw):
        body = {"rate_limit": 0}
        body.update(kw)
        return self.ctl("POST", "reset", body)

    def now(self):
        return self.ctl("GET", "clock")["now"]

    def api_json(self, path, status=200):
        r = self.get(path)
        self.assertEqual(r.status, status, r.body[:500])
        return r.json()

    def rel(self, url):
        u = urlsplit(url)
        self.assertEqual(u.netloc, "%s:%d" % (self.host, self.port))
        return u.path + ("?" + u.query if u.query else "")

    def cursor_pages(self, first_path):
        pages, path = [], first_path
        for _ in range(10000):
            d = self.api_json(path)
            pages.append(d)
            if d["end_of_stream"]:
                return pages
            path = self.rel(d["after_url"])
        self.fail("no end_of_stream")


class TestData(MockTestCase):
    def test_first_tickets_are_fixture_copies(self):
        eos87 = {t["id"]: t for t in fixture("incremental_tickets_time_end_of_stream_with_deleted.json")["tickets"]}
        t5 = fixture("incremental_tickets_cursor_end_of_stream.json")["tickets"][0]
        t2 = fixture("ticket_show.json")["ticket"]
        acc = self.ctl("GET", "account/tickets")
        self.assertEqual(len(acc), 200)
        ids = [t["id"] for t in acc]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(ids[:5], [1, 2, 5, 28, 29])
        byid = {t["id"]: t for t in acc}
        for tid in (1, 28, 29, 100, 4034, 4045):
            self.assertEqual(byid[tid], eos87[tid])
            self.assertEqual(list(byid[tid]), list(eos87[tid]))
        self.assertEqual(byid[5], t5)
        self.assertEqual(list(byid[5]), list(t5))
        exp2 = dict(t2)
        exp2["generated_timestamp"] = zm.parse_iso(t2["updated_at"])
        self.assertEqual(list(byid[2]), list(exp2))
        self.assertEqual(byid[2], exp2)
        # show endpoint: exact fixture object, no generated_timestamp
        self.assertEqual(self.api_json("/api/v2/tickets/2.json"), {"ticket": t2})
        show1 = self.api_json("/api/v2/tickets/1")["ticket"]
        self.assertNotIn("generated_timestamp", show1)
        self.assertEqual(show1["subject"], eos87[1]["subject"])

    def test_special_records(self):
        self.reset(tickets=300, users=60, organizations=30)
        tickets = self.ctl("GET", "account/tickets")
        deleted = [t for t in tickets if t["status"] == "deleted"]
        self.assertGreaterEqual(len(deleted), 3)
        self.assertGreaterEqual(len([t for t in deleted if t["subject"] == "SCRUBBED"]), 2)
        self.assertGreaterEqual(len([t for t in tickets if "closed_by_merge" in t["tags"]]), 2)
        values = [f["value"] for t in tickets for f in t["custom_fields"]]
        for v in (None, "007", True, ["a", "b"], 12345678901234):
            self.assertIn(v, values)
        tmpl_keys = list(fixture("incremental_tickets_time_end_of_stream_with_deleted.json")["tickets"][0])
        for t in tickets:
            self.assertIsInstance(t["id"], int)
            self.assertIsInstance(t["generated_timestamp"], int)
            self.assertRegex(t["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertRegex(t["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertLessEqual(zm.parse_iso(t["updated_at"]), t["generated_timestamp"])
            self.assertLessEqual(zm.parse_iso(t["created_at"]), zm.parse_iso(t["updated_at"]))
        gen = [t for t in tickets if t["id"] > 4045]
        self.assertTrue(any(list(t) == tmpl_keys for t in gen))
        # archived: closed, present in exports, absent from /tickets
        listed = set()
        path = "/api/v2/tickets.json?page[size]=100"
        while True:
            d = self.api_json(path)
            listed.update(t["id"] for t in d["tickets"])
            if not d["meta"]["has_more"]:
                break
            path = self.rel(d["links"]["next"])
        exported = {t["id"] for t in tickets}
        missing = exported - listed
        self.assertTrue(all(t["status"] in ("deleted", "closed") for t in tickets if t["id"] in missing))
        self.assertGreaterEqual(len([i for i in missing if i not in {t["id"] for t in deleted}]), 3)
        users = self.ctl("GET", "account/users")
        self.assertEqual(len(users), 60)
        inactive = [u for u in users if u["active"] is False]
        self.assertGreaterEqual(len(inactive), 3)
        self.assertTrue(all(u["email"] is None for u in inactive))
        orgs = self.ctl("GET", "account/organizations")
        dorgs = [o for o in orgs if o["deleted_at"]]
        self.assertTrue(dorgs)
        for o in dorgs:
            self.assertTrue(o["name"].startswith("%d_deleted_" % o["id"]))
        # ticket events reference existing tickets and keep timestamps consistent
        events = self.ctl("GET", "account/ticket_events")
        self.assertEqual(len(events), 300 * 3)
        for e in events[:50] + events[-50:]:
            self.assertIn(e["ticket_id"], exported)
            self.assertEqual(zm.iso(e["timestamp"]), e["created_at"])
            self.assertEqual(e["event_type"], "Audit")

    def test_deterministic_by_seed(self):
        a = self.ctl("GET", "account/tickets")
        self.reset()
        self.assertEqual(a, self.ctl("GET", "account/tickets"))
        self.reset(seed=2)
        b = self.ctl("GET", "account/tickets")
        self.assertEqual(a[:5], b[:5])
        self.assertNotEqual(a, b)

    def test_account_dump_and_visible(self):
        self.reset(tickets=20, users=10, organizations=5, events_per_ticket=2)
        self.assertEqual(len(self.ctl("GET", "account/tickets")), 20)
        self.assertEqual(len(self.ctl("GET", "account/users")), 10)
        self.assertEqual(len(self.ctl("GET", "account/organizations")), 5)
        ev = self.ctl("GET", "account/ticket_events")
        self.assertEqual(len(ev), 40)
        self.assertTrue(any(c.get("type") == "Comment" and "body" in c for e in ev for c in e["child_events"]))
        self.assertEqual(len(self.ctl("GET", "account/ticket_metric_events")), 40)
        self.ctl("POST", "mutate/tickets", {"op": "update", "id": 1, "changes": {"subject": "fresh"}})
        vis = self.ctl("GET", "account/tickets?visible=1")
        self.assertNotIn(1, [t["id"] for t in vis])
        self.assertIn(1, [t["id"] for t in self.ctl("GET", "account/tickets")])


class TestCursorExport(MockTestCase):
    def test_paging_to_end_of_stream(self):
        acc = self.ctl("GET", "account/tickets?visible=1")
        pages = self.cursor_pages("/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=7")
        for p in pages[:-1]:
            self.assertEqual(len(p["tickets"]), 7)
            self.assertFalse(p["end_of_stream"])
        self.assertLessEqual(len(pages[-1]["tickets"]), 7)
        recs = [t for p in pages for t in p["tickets"]]
        self.assertEqual(len(recs), len(acc))
        self.assertEqual(len({t["id"] for t in recs}), len(recs))
        order = [(t["generated_timestamp"], t["id"]) for t in recs]
        self.assertEqual(order, sorted(order))
        for p in pages:
            self.assertEqual(list(p), ["tickets", "after_url", "before_url", "after_cursor",
                                       "before_cursor", "end_of_stream"])
            self.assertIsNone(p["before_url"])
            self.assertIsNone(p["before_cursor"])
            last = p["tickets"][-1]
            self.assertEqual(p["after_cursor"], cursor_of(last["generated_timestamp"], last["id"]))
            self.assertIn("?cursor=" + quote(p["after_cursor"], safe="") + "&per_page=7", p["after_url"])
            self.assertTrue(p["after_url"].startswith("http://%s:%d/api/v2/incremental/tickets/cursor.json?"
                                                      % (self.host, self.port)))
        self.assertTrue(pages[-1]["end_of_stream"])
        self.assertIsNotNone(pages[-1]["after_cursor"])

    def test_cursor_round_trip_and_poll(self):
        p1 = self.api_json("/api/v2/incremental/tickets/cursor?start_time=0&per_page=5")
        raw = base64.b64decode(p1["after_cursor"]).decode()
        last = p1["tickets"][-1]
        self.assertEqual(raw, "%d.0||%d|" % (last["generated_timestamp"], last["id"]))
        self.assertNotIn(".json", p1["after_url"])
        p2 = self.api_json("/api/v2/incremental/tickets/cursor?cursor=" + quote(p1["after_cursor"], safe="") +
                           "&per_page=5")
        all5 = self.api_json("/api/v2/incremental/tickets/cursor?start_time=0&per_page=10")
        self.assertEqual([t["id"] for t in p1["tickets"] + p2["tickets"]], [t["id"] for t in all5["tickets"]])
        # default per_page is 1000: one page for the whole 200-ticket account
        full = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=0")
        self.assertTrue(full["end_of_stream"])
        self.assertNotIn("per_page", full["after_url"])
        # polling with an up-to-date cursor: empty page, same cursor, end_of_stream
        again = self.api_json("/api/v2/incremental/tickets/cursor.json?cursor=" + quote(full["after_cursor"], safe=""))
        self.assertEqual(again["tickets"], [])
        self.assertTrue(again["end_of_stream"])
        self.assertEqual(again["after_cursor"], full["after_cursor"])
        # start_time with nothing after it: null cursor
        st = self.now() - 120
        empty = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=%d" % st)
        self.assertEqual(empty["tickets"], [])
        self.assertIsNone(empty["after_cursor"])
        self.assertIsNone(empty["after_url"])
        self.assertTrue(empty["end_of_stream"])

    def test_users_cursor_export(self):
        pages = self.cursor_pages("/api/v2/incremental/users/cursor?start_time=0&per_page=19")
        users = [u for p in pages for u in p["users"]]
        self.assertEqual(len(users), 50)
        keys = [(zm.parse_iso(u["updated_at"]), u["id"]) for u in users]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(list(pages[0]), ["users", "after_url", "before_url", "after_cursor",
                                          "before_cursor", "end_of_stream"])
        last = users[-1]
        self.assertEqual(pages[-1]["after_cursor"], cursor_of(zm.parse_iso(last["updated_at"]), last["id"]))

    def test_exclude_deleted(self):
        full = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=0")["tickets"]
        excl = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=0&exclude_deleted=true")["tickets"]
        self.assertTrue(any(t["status"] == "deleted" for t in full))
        self.assertEqual([t["id"] for t in excl], [t["id"] for t in full if t["status"] != "deleted"])

    def test_bad_requests(self):
        for bad in ("not-a-cursor", "!!!", base64.b64encode(b"hello").decode(), "MTY5NTA1MjY2My4wfHwyOHw"):
            r = self.get("/api/v2/incremental/tickets/cursor.json?cursor=" + quote(bad, safe=""))
            self.assertEqual(r.status, 400, bad)
            self.assertEqual(r.json(), {"error": "InvalidPaginationParameter", "description": "cursor is not valid"})
        r = self.get("/api/v2/incremental/tickets/cursor.json")
        self.assertEqual(r.status, 400)
        self.assertIn("error", r.json())
        r = self.get("/api/v2/incremental/users/cursor.json?start_time=0&cursor=" + cursor_of(1, 1))
        self.assertEqual(r.status, 400)
        r = self.get("/api/v2/incremental/tickets.json")
        self.assertEqual(r.status, 400)

    def test_too_recent_start_time(self):
        now = self.now()
        body = {"error": "InvalidValue", "description": "Too recent start_time. Use a start_time older than 1 minute"}
        for path in ("/api/v2/incremental/tickets/cursor.json", "/api/v2/incremental/users/cursor.json",
                     "/api/v2/incremental/tickets.json", "/api/v2/incremental/organizations.json",
                     "/api/v2/incremental/ticket_events.json"):
            for st in (now + 3600, now, now - 30):
                r = self.get("%s?start_time=%d" % (path, st))
                self.assertEqual(r.status, 422, (path, st))
                self.assertEqual(r.json(), body)
            self.assertEqual(self.get("%s?start_time=%d" % (path, now - 65)).status, 200)

    def test_holdback_hides_recent_records(self):
        now = self.now()
        start = now - 3600
        self.ctl("POST", "mutate/tickets", {"op": "update", "id": 28, "changes": {"status": "open"}})
        self.ctl("POST", "mutate/users", {"op": "update", "id": self.ctl("GET", "account/users")[0]["id"],
                                          "changes": {"name": "Renamed"}})
        d = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=%d" % start)
        self.assertEqual(d["tickets"], [])
        self.assertTrue(d["end_of_stream"])
        self.assertEqual(self.api_json("/api/v2/incremental/users.json?start_time=%d" % start)["users"], [])
        self.ctl("POST", "clock", {"advance": 61})
        d = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=%d" % start)
        self.assertEqual([t["id"] for t in d["tickets"]], [28])
        self.assertEqual(d["tickets"][0]["status"], "open")
        self.assertEqual([u["name"] for u in self.api_json("/api/v2/incremental/users.json?start_time=%d"
                                                             % start)["users"]], ["Renamed"])
        # zero hold-back via config
        self.ctl("POST", "config", {"holdback": 0})
        self.ctl("POST", "mutate/tickets", {"op": "update", "id": 29, "changes": {"priority": "high"}})
        d = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=%d" % start)
        self.assertEqual([t["id"] for t in d["tickets"]], [28, 29])


class TestTimeExport(MockTestCase):
    def test_small_per_page_extends_second(self):
        d = self.api_json("/api/v2/incremental/tickets.json?per_page=1&start_time=1695052663")
        fx = fixture("incremental_tickets_time_first_page_same_timestamp.json")
        self.assertEqual(sorted(t["id"] for t in d["tickets"]), sorted(t["id"] for t in fx["tickets"]))
        self.assertEqual(list(d), ["tickets", "count", "end_of_stream", "next_page", "end_time"])
        self.assertEqual(d["count"], 7)
        self.assertEqual(d["end_time"], 1695052664)
        self.assertFalse(d["end_of_stream"])
        self.assertTrue(d["next_page"].endswith("/api/v2/incremental/tickets.json?per_page=1&start_time=1695052664"))

    def test_full_pages_repeat_boundary_records(self):
        self.reset(tickets=2600)
        visible = self.ctl("GET", "account/tickets?visible=1")
        # put 3 records on one second around the 1000 boundary
        keys = sorted((t["generated_timestamp"], t["id"]) for t in visible)
        bts = keys[999][0]
        self.ctl("POST", "mutate/tickets", {"op": "bulk_same_second", "count": 3, "at": bts, "system": True,
                                            "ids": [keys[998][1], keys[1000][1], keys[1001][1]]})
        seen, path, pages = {}, "/api/v2/incremental/tickets.json?start_time=0", []
        while True:
            d = self.api_json(path)
            pages.append(d)
            for t in d["tickets"]:
                seen[t["id"]] = seen.get(t["id"], 0) + 1
            if d["end_of_stream"]:
                break
            self.assertLessEqual(len(pages), 10)
            path = self.rel(d["next_page"])
        self.assertEqual(len(pages[0]["tickets"]), 1000)
        self.assertEqual(pages[0]["end_time"], pages[0]["tickets"][-1]["generated_timestamp"])
        self.assertEqual(pages[0]["end_time"], bts)
        self.assertIn("start_time=%d" % bts, pages[0]["next_page"])
        dups = [i for i, n in seen.items() if n > 1]
        self.assertGreaterEqual(len(dups), 1)
        p2_ts = [t["generated_timestamp"] for t in pages[1]["tickets"]]
        self.assertEqual(p2_ts[0], bts)
        self.assertEqual(set(seen), {t["id"] for t in visible})
        last = pages[-1]
        self.assertTrue(last["end_of_stream"])
        self.assertEqual(last["end_time"], last["tickets"][-1]["generated_timestamp"])
        self.assertIn("start_time=%d" % last["end_time"], last["next_page"])
        # following next_page after end_of_stream re-returns the boundary records
        again = self.api_json(self.rel(last["next_page"]))
        self.assertTrue(again["end_of_stream"])
        self.assertGreaterEqual(again["count"], 1)
        self.assertEqual(again["end_time"], last["end_time"])

    def test_empty_result(self):
        st = self.now() - 120
        for res in ("tickets", "users", "organizations", "ticket_events", "ticket_metric_events"):
            d = self.api_json("/api/v2/incremental/%s.json?start_time=%d" % (res, st))
            self.assertEqual(d[res], [])
            self.assertEqual(d["count"], 0)
            self.assertIsNone(d["end_time"])
            self.assertIsNone(d["next_page"])
            self.assertTrue(d["end_of_stream"])
            if res != "tickets":
                self.assertEqual(list(d), [res, "next_page", "count", "end_of_stream", "end_time"])

    def test_stuck_page_same_second(self):
        at = self.now() - 7200
        self.ctl("POST", "mutate/tickets", {"op": "bulk_same_second", "count": 1200, "at": at})
        path = "/api/v2/incremental/tickets.json?start_time=%d" % at
        d1 = self.api_json(path)
        self.assertEqual(d1["count"], 1000)
        self.assertEqual(d1["end_time"], at)
        self.assertFalse(d1["end_of_stream"])
        self.assertEqual(self.rel(d1["next_page"]), path)
        d2 = self.api_json(self.rel(d1["next_page"]))
        self.assertEqual([t["id"] for t in d2["tickets"]], [t["id"] for t in d1["tickets"]])
        # ticket_events: same stuck shape (one Change event per touched ticket)
        e1 = self.api_json("/api/v2/incremental/ticket_events.json?start_time=%d" % at)
        self.assertEqual(e1["count"], 1000)
        self.assertEqual(e1["end_time"], at)
        # cursor export does not get stuck
        pages = self.cursor_pages("/api/v2/incremental/tickets/cursor.json?start_time=%d" % at)
        self.assertEqual(len(pages), 2)
        self.assertEqual(len(pages[0]["tickets"]), 1000)
        ids = [t["id"] for p in pages for t in p["tickets"]]
        self.assertEqual(len(ids), 1200)
        self.assertEqual(len(set(ids)), 1200)
        self.assertEqual(ids, sorted(ids))

    def test_ticket_events_comment_events(self):
        st = 0
        d = self.api_json("/api/v2/incremental/ticket_events.json?start_time=%d&per_page=50" % st)
        self.assertEqual(list(d), ["ticket_events", "next_page", "count", "end_of_stream", "end_time"])
        ev = d["ticket_events"][0]
        self.assertEqual(list(ev), ["child_events", "id", "ticket_id", "timestamp", "created_at",
                                    "updater_id", "via", "system", "event_type"])
        comments = [c for e in d["ticket_events"] for c in e["child_events"] if c["event_type"] == "Comment"]
        self.assertTrue(comments)
        for c in comments:
            self.assertIn("comment_present", c)
            self.assertNotIn("body", c)
        d2 = self.api_json("/api/v2/incremental/ticket_events.json?start_time=%d&per_page=50"
                           "&include=comment_events" % st)
        self.assertEqual([e["id"] for e in d2["ticket_events"]], [e["id"] for e in d["ticket_events"]])
        c2 = [c for e in d2["ticket_events"] for c in e["child_events"] if c["event_type"] == "Comment"]
        for c in c2:
            self.assertEqual(c["type"], "Comment")
            for k in ("id", "author_id", "body", "html_body", "plain_body", "public", "attachments",
                      "audit_id", "created_at", "via"):
                self.assertIn(k, c)
            self.assertIsInstance(c["via"], dict)
        order = [(e["timestamp"], e["id"]) for e in d2["ticket_events"]]
        self.assertEqual(order, sorted(order))

    def test_other_time_exports(self):
        o = self.api_json("/api/v2/incremental/organizations.json?start_time=0")
        self.assertEqual(o["count"], 20)
        self.assertTrue(o["end_of_stream"])
        fx = fixture("incremental_organizations_end_of_stream.json")["organizations"][0]
        self.assertIn(fx, o["organizations"])
        m = self.api_json("/api/v2/incremental/ticket_metric_events?start_time=0&per_page=10")
        self.assertEqual(list(m["ticket_metric_events"][0]), ["id", "ticket_id", "metric", "instance_id",
                                                              "type", "time"])
        self.assertNotIn(".json", m["next_page"])
        u = self.api_json("/api/v2/incremental/users.json?start_time=1694375810&per_page=1")
        self.assertEqual(len(u["users"]), 4)
        self.assertEqual(u["end_time"], 1694375852)
        self.assertTrue(all(x["active"] is False and x["email"] is None for x in u["users"]))


class TestOtherEndpoints(MockTestCase):
    def test_show_many_and_errors(self):
        d = self.api_json("/api/v2/tickets/show_many.json?ids=1,2,999999,4034")
        self.assertEqual([t["id"] for t in d["tickets"]], [1, 2])
        self.assertEqual((d["next_page"], d["previous_page"], d["count"]), (None, None, 2))
        r = self.get("/api/v2/users/show_many.json?ids=" + ",".join(str(i) for i in range(101)))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"], "TooManyValues")
        r = self.get("/api/v2/tickets/999999.json")
        self.assertEqual((r.status, r.json()), (404, {"error": "RecordNotFound", "description": "Not found"}))
        r = self.get("/api/v2/tickets/4034.json")  # deleted
        self.assertEqual(r.status, 404)
        r = self.get("/api/v2/no/such/thing.json")
        self.assertEqual((r.status, r.json()), (404, {"error": "InvalidEndpoint", "description": "Not found"}))
        uid = self.ctl("GET", "account/users")[0]["id"]
        self.assertEqual(self.api_json("/api/v2/users/%d.json" % uid)["user"]["id"], uid)
        oid = self.ctl("GET", "account/organizations")[0]["id"]
        self.assertEqual(self.api_json("/api/v2/organizations/%d" % oid)["organization"]["id"], oid)
        self.assertEqual(len(self.api_json("/api/v2/organizations/show_many?ids=%d" % oid)["organizations"]), 1)

    def test_list_cursor_pagination(self):
        r = self.get("/api/v2/tickets.json?page[size]=101")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json(), {"error": "InvalidPaginationParameter",
                                    "description": "page[size] cannot be greater than 100"})
        r = self.get("/api/v2/tickets.json?page[size]=10&page[after]=not-a-cursor")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["description"], "page[after] is not valid")
        first = self.api_json("/api/v2/tickets.json?page%5Bsize%5D=1")
        fx = fixture("tickets_list_cursor_page.json")
        self.assertEqual(first["meta"]["after_cursor"], fx["meta"]["after_cursor"])
        self.assertEqual(list(first), ["tickets", "meta", "links"])
        ids, path, last = [], "/api/v2/users.json?page[size]=7", None
        while True:
            d = self.api_json(path)
            ids += [u["id"] for u in d["users"]]
            last = d
            if not d["meta"]["has_more"]:
                break
            path = self.rel(d["links"]["next"])
        self.assertIsNotNone(last["meta"]["after_cursor"])
        self.assertIsNotNone(last["links"]["next"])
        users = self.ctl("GET", "account/users")
        self.assertEqual(ids, [u["id"] for u in users if u["active"]])
        off = self.api_json("/api/v2/organizations.json")
        self.assertEqual(off["count"], len([o for o in self.ctl("GET", "account/organizations")
                                            if not o["deleted_at"]]))
        self.assertIsNone(off["next_page"])

    def test_users_me(self):
        me = self.api_json("/api/v2/users/me.json")["user"]
        self.assertEqual(me["role"], "admin")
        r = self.get("/api/v2/users/me.json", auth=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["user"]["name"], "Anonymous user")

    def test_gzip_keepalive_date(self):
        c = self.conn()
        r = self.get("/api/v2/incremental/tickets/cursor.json?start_time=0", conn=c,
                     headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(int(r.header("content-length")), len(r.body))
        d = json.loads(gzip.decompress(r.body))
        self.assertEqual(len(d["tickets"]), 200)
        self.assertEqual(r.header("content-type"), "application/json; charset=utf-8")
        # same connection again (keep-alive), no gzip
        r2 = self.get("/api/v2/tickets/1.json", conn=c)
        self.assertEqual(r2.status, 200)
        self.assertIsNone(r2.header("content-encoding"))
        c.close()
        self.ctl("POST", "clock", {"advance": 86400 * 3})
        r = self.get("/api/v2/tickets/1.json")
        date = email.utils.parsedate_to_datetime(r.header("date")).timestamp()
        self.assertAlmostEqual(date, self.now(), delta=5)
        self.assertGreater(date, time.time() + 86400 * 2)


class TestAuthAndLimits(MockTestCase):
    def test_auth(self):
        path = "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=1"
        for auth in (None, "Basic " + base64.b64encode(b"admin@example.com/token:wrong").decode(),
                     "Basic " + base64.b64encode(b"admin@example.com:test-token").decode(), "Basic ???"):
            r = self.get(path, auth=auth)
            self.assertEqual(r.status, 401, auth)
            self.assertEqual(r.json(), {"error": "Couldn't authenticate you"})
            self.assertEqual(r.header("www-authenticate"), 'Basic realm="Web Password"')
        r = self.get(path, auth="Bearer wrong")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"], "invalid_token")
        self.assertIn("expired, revoked", r.json()["error_description"])
        self.assertEqual(self.get(path, auth="Bearer " + OAUTH).status, 200)
        self.assertEqual(self.get(path).status, 200)
        log = self.ctl("GET", "requests")
        self.assertEqual([e["auth"] for e in log], ["none", "bad", "bad", "bad", "bad", "bearer", "basic"])
        self.assertEqual([e["status"] for e in log], [401] * 5 + [200, 200])
        self.reset(email="x@example.com", token="t2")
        good = "Basic " + base64.b64encode(b"x@example.com/token:t2").decode()
        self.assertEqual(self.get(path, auth=good).status, 200)
        self.assertEqual(self.get(path).status, 401)

    def test_forbidden_prefix(self):
        self.ctl("POST", "config", {"forbidden_prefixes": ["/api/v2/incremental/organizations"]})
        r = self.get("/api/v2/incremental/organizations.json?start_time=0")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"]["title"], "Forbidden")
        self.assertEqual(self.get("/api/v2/incremental/tickets.json?start_time=0").status, 200)
        self.ctl("POST", "config", {"forbidden_prefixes": ["incremental"]})
        self.assertEqual(self.get("/api/v2/incremental/tickets.json?start_time=0").status, 403)
        self.assertEqual(self.get("/api/v2/tickets/1.json").status, 200)

    def _align_window(self, window):
        now = self.ctl("GET", "clock")["now_float"]
        self.ctl("POST", "clock", {"advance": (window - now % window) + 1})

    def test_rate_limit(self):
        self.reset(rate_limit=3, rate_window=60)
        self._align_window(60)
        path = "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=1"
        remaining = []
        for _ in range(3):
            r = self.get(path)
            self.assertEqual(r.status, 200)
            for h in ("x-rate-limit", "x-rate-limit-remaining", "ratelimit-limit", "ratelimit-remaining",
                      "ratelimit-reset"):
                self.assertIsNotNone(r.header(h), h)
            remaining.append(r.header("zendesk-ratelimit-incremental-exports"))
        self.assertTrue(remaining[0].startswith("total=3; remaining=2; resets="), remaining)
        self.assertTrue(remaining[2].startswith("total=3; remaining=0; resets="), remaining)
        r = self.get(path)
        self.assertEqual(r.status, 429)
        self.assertEqual(r.header("content-type").split(";")[0], "text/plain")
        self.assertEqual(r.body.decode(), "Number of allowed API requests per minute exceeded")
        ra = int(r.header("retry-after"))
        self.assertTrue(1 <= ra <= 60, ra)
        # exports share one bucket; other paths have their own
        self.assertEqual(self.get("/api/v2/incremental/organizations.json?start_time=0").status, 429)
        r = self.get("/api/v2/tickets/1.json")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("zendesk-ratelimit-incremental-exports"))
        self.ctl("POST", "clock", {"advance": ra})
        self.assertEqual(self.get(path).status, 200)

    def test_rate_limit_disabled(self):
        for _ in range(15):
            self.assertEqual(self.get("/api/v2/incremental/tickets.json?start_time=0&per_page=1").status, 200)


class TestFaults(MockTestCase):
    P = "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=2"

    def fault(self, spec):
        return self.ctl("POST", "faults", spec)

    def test_http_error_kinds(self):
        self.fault([{"kind": "429"}, {"kind": 429, "retry_after": None}, {"kind": "429", "retry_after": "soon"},
                    {"kind": "500"}, {"kind": "502"}, {"kind": "503", "retry_after": 10}, {"kind": "504"},
                    {"kind": "html_200"}, {"kind": "bad_cursor"},
                    {"kind": "status", "status": 418, "body": {"error": "Teapot"}, "headers": {"X-Test": "1"}},
                    {"kind": "json_body", "body": '{"tickets":"x"}'},
                    {"kind": "json_body", "body": '{"tickets":[{"id":1,"subject":"a\\u0000b"}],"end_of_stream":"yes"}'}])
        r = self.get(self.P)
        self.assertEqual((r.status, r.header("retry-after"), r.header("content-type").split(";")[0]),
                         (429, "1", "text/plain"))
        self.assertEqual(r.body, b"Number of allowed API requests per minute exceeded")
        r = self.get(self.P)
        self.assertEqual((r.status, r.header("retry-after")), (429, None))
        r = self.get(self.P)
        self.assertEqual((r.status, r.header("retry-after")), (429, "soon"))
        r = self.get(self.P)
        self.assertEqual(r.status, 500)
        self.assertEqual(r.json(), {"status": 500, "error": "Internal Server Error"})
        r = self.get(self.P)
        self.assertEqual(r.status, 502)
        r = self.get(self.P)
        self.assertEqual((r.status, r.header("retry-after")), (503, "10"))
        self.assertTrue(r.header("content-type").startswith("text/html"))
        self.assertIn(b"<html>", r.body)
        r = self.get(self.P)
        self.assertEqual((r.status, r.body), (504, b"upstream request timeout"))
        r = self.get(self.P)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/html"))
        self.assertIn(b"<!DOCTYPE html>", r.body)
        r = self.get(self.P)
        self.assertEqual((r.status, r.json()), (400, {"error": "InvalidPaginationParameter",
                                                      "description": "cursor is not valid"}))
        r = self.get(self.P)
        self.assertEqual((r.status, r.json(), r.header("x-test")), (418, {"error": "Teapot"}, "1"))
        r = self.get(self.P)
        self.assertEqual((r.status, r.body), (200, b'{"tickets":"x"}'))
        r = self.get(self.P)
        self.assertEqual(r.json()["tickets"][0]["subject"], "a\x00b")
        self.assertEqual(self.get(self.P).status, 200)  # schedule exhausted
        log = self.ctl("GET", "requests")
        self.assertEqual([e["fault"] for e in log][:12],
                         ["429", "429", "429", "500", "502", "503", "504", "html_200", "bad_cursor", "status",
                          "json_body", "json_body"])
        self.assertIsNone(log[-1]["fault"])
        self.assertEqual(log[0]["status"], 429)

    def test_504_min_per_page_and_matching(self):
        self.fault({"kind": "504", "path": "/incremental/tickets/cursor", "min_per_page": 500, "times": -1})
        self.assertEqual(self.get("/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=100").status, 200)
        self.assertEqual(self.get("/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=500").status, 504)
        self.assertEqual(self.get("/api/v2/incremental/tickets/cursor.json?start_time=0").status, 504)
        self.assertEqual(self.get("/api/v2/incremental/users/cursor.json?start_time=0").status, 200)
        faults = self.ctl("GET", "faults")
        self.assertEqual(faults[0]["remaining"], -1)
        self.assertEqual(faults[0]["applied"], 2)
        self.ctl("DELETE", "faults")
        self.assertEqual(self.ctl("GET", "faults"), [])
        # query subset, "*" = present, after/times
        self.fault({"kind": "500", "query": {"cursor": "*"}, "after": 1, "times": 2})
        p1 = self.api_json(self.P)
        nxt = self.rel(p1["after_url"])
        self.assertEqual(self.get(nxt).status, 200)        # first match skipped (after=1)
        self.assertEqual(self.get(self.P).status, 200)     # no cursor: no match
        self.assertEqual(self.get(nxt).status, 500)
        self.assertEqual(self.get(nxt).status, 500)
        self.assertEqual(self.get(nxt).status, 200)        # times exhausted
        self.assertEqual(self.ctl("GET", "faults")[0]["remaining"], 0)
        self.ctl("POST", "faults/clear")
        self.fault({"kind": "503", "query": {"per_page": 2}})
        self.assertEqual(self.get("/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=3").status, 200)
        self.assertEqual(self.get(self.P).status, 503)

    def test_connection_faults(self):
        self.fault({"kind": "truncated"})
        c = self.conn()
        c.request("GET", self.P, headers={"Authorization": BASIC})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/json; charset=utf-8")
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        c.close()
        self.fault({"kind": "reset"})
        c = self.conn()
        c.request("GET", self.P, headers={"Authorization": BASIC})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError)):
            c.getresponse()
        c.close()
        self.fault({"kind": "reset_mid_body"})
        c = self.conn()
        c.request("GET", self.P, headers={"Authorization": BASIC})
        with self.assertRaises((http.client.IncompleteRead, ConnectionResetError, http.client.RemoteDisconnected)):
            r = c.getresponse()
            r.read()
        c.close()
        self.fault({"kind": "slow", "delay": 0.3})
        t = time.time()
        self.assertEqual(self.get(self.P).status, 200)
        self.assertGreaterEqual(time.time() - t, 0.29)
        log = self.ctl("GET", "requests")
        self.assertEqual([e["fault"] for e in log], ["truncated", "reset", "reset_mid_body", "slow"])
        self.assertEqual(self.get(self.P).status, 200)

    def test_headers_fault_and_rate_headers_everywhere(self):
        self.fault({"kind": "headers", "path": "/incremental",
                    "headers": {"zendesk-ratelimit-incremental-exports": "total=10; remaining=0; resets=37"}})
        c = self.conn()
        c.request("GET", self.P, headers={"Authorization": BASIC})
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        vals = [v for k, v in r.getheaders() if k.lower() == "zendesk-ratelimit-incremental-exports"]
        self.assertEqual(vals, ["total=10; remaining=0; resets=37"])
        c.close()
        for resp in (self.get(self.P, auth=None), self.get("/api/v2/nope.json")):
            self.assertIsNotNone(resp.header("x-rate-limit"))
            self.assertIsNotNone(resp.header("ratelimit-reset"))
        self.fault({"kind": "500", "body": {"error": "InternalError"}, "min_per_page": 1000})
        self.assertEqual(self.get(self.P).status, 200)
        r = self.get("/api/v2/incremental/tickets/cursor.json?start_time=0")
        self.assertEqual((r.status, r.json()), (500, {"error": "InternalError"}))
        self.assertIsNotNone(r.header("zendesk-ratelimit-incremental-exports"))

    def test_truncated_gzip(self):
        self.fault({"kind": "truncated"})
        s = socket.create_connection((self.host, self.port), timeout=5)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nAuthorization: %s\r\n\r\n"
                   % (self.P, BASIC)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Encoding: gzip", head)
        clen = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0])
        self.assertEqual(len(body), clen // 2)


class TestLogAndMutations(MockTestCase):
    def test_request_log(self):
        self.get("/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=3&include=users")
        self.get("/api/v2/tickets/show_many.json?ids=1%2C2")
        log = self.ctl("GET", "requests")
        self.assertEqual(len(log), 2)
        e = log[0]
        for k in ("seq", "method", "path", "query", "status", "fault", "auth"):
            self.assertIn(k, e)
        self.assertEqual(e["path"], "/api/v2/incremental/tickets/cursor.json")
        self.assertEqual(e["query"], {"start_time": "0", "per_page": "3", "include": "users"})
        self.assertEqual((e["method"], e["status"], e["fault"], e["auth"]), ("GET", 200, None, "basic"))
        self.assertEqual(log[1]["query"], {"ids": "1,2"})
        self.assertEqual(log[1]["seq"], e["seq"] + 1)
        self.assertNotIn(TOKEN, json.dumps(log))
        self.assertNotIn(BASIC.split()[1], json.dumps(log))
        self.ctl("DELETE", "requests")
        self.assertEqual(self.ctl("GET", "requests"), [])
        self.get("/api/v2/tickets/1.json")
        self.ctl("POST", "requests/clear")
        self.assertEqual(self.ctl("GET", "requests"), [])

    def test_ticket_mutations(self):
        now = self.now()
        res = self.ctl("POST", "mutate/tickets", {"op": "update", "id": 28, "at": now - 600,
                                                  "changes": {"subject": "Changed", "status": "open",
                                                              "custom_fields": [{"id": 1, "value": ["x"]}]},
                                                  "comment": {"body": "hello there", "public": False}})
        rec = res["record"]
        self.assertEqual((rec["subject"], rec["generated_timestamp"], rec["updated_at"]),
                         ("Changed", now - 600, zm.iso(now - 600)))
        self.assertEqual(rec["fields"], [{"id": 1, "value": ["x"]}])
        d = self.api_json("/api/v2/incremental/tickets/cursor.json?start_time=%d" % (now - 700))
        self.assertEqual([t["id"] for t in d["tickets"]], [28])
        self.assertEqual(self.api_json("/api/v2/tickets/28.json")["ticket"]["subject"], "Changed")
        ev = self.api_json("/api/v2/incremental/ticket_events.json?start_time=%d&include=comment_events"
                           % (now - 700))["ticket_events"]
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["ticket_id"], 28)
        kids = ev[0]["child_events"]
        self.assertEqual(kids[0]["body"], "hello there")
        self.assertFalse(kids[0]["public"])
        subj = [c for c in kids if "subject" in c][0]
        self.assertEqual((subj["event_type"], subj["previous_value"]), ("Change", "test"))
        # system update: only generated_timestamp moves, no event
        self.ctl("POST", "mutate/tickets", {"op": "update", "id": 29, "at": now - 500, "system": True,
                                            "changes": {"satisfaction_rating": {"score": "good"}}})
        t29 = [t for t in self.ctl("GET", "account/tickets") if t["id"] == 29][0]
        self.assertEqual(t29["generated_timestamp"], now - 500)
        self.assertEqual(t29["updated_at"], "2023-09-18T15:57:42Z")
        # create, delete, scrub, archive
        c = self.ctl("POST", "mutate/tickets", {"op": "create", "at": now - 400, "changes": {"subject": "Brand new"}})
        nid = c["id"]
        self.assertEqual(self.api_json("/api/v2/tickets/%d.json" % nid)["ticket"]["subject"], "Brand new")
        self.ctl("POST", "mutate/tickets", {"op": "delete", "id": nid, "at": now - 300})
        self.assertEqual(self.get("/api/v2/tickets/%d.json" % nid).status, 404)
        exp = self.api_json("/api/v2/incremental/tickets.json?start_time=%d" % (now - 450))
        self.assertEqual([(t["id"], t["status"]) for t in exp["tickets"]], [(nid, "deleted")])
        self.ctl("POST", "mutate/tickets", {"op": "scrub", "id": nid, "at": now - 200})
        t = self.api_json("/api/v2/incremental/tickets.json?start_time=%d" % (now - 250))["tickets"][0]
        self.assertEqual((t["subject"], t["description"], t["status"]), ("SCRUBBED", "X", "deleted"))
        self.ctl("POST", "mutate/tickets", {"op": "update", "id": 30, "at": now - 100, "archived": True,
                                            "changes": {"status": "closed"}})
        listed = self.api_json("/api/v2/tickets.json?page[size]=100")["tickets"]
        self.assertNotIn(30, [x["id"] for x in listed])
        self.assertEqual(self.api_json("/api/v2/tickets/30.json")["ticket"]["status"], "closed")
        r = self.request("POST", "/__mock/mutate/tickets", {"op": "update", "id": 123456789}, auth=None)
        self.assertEqual(r.status, 404)
        r = self.request("POST", "/__mock/mutate/tickets", {"op": "frobnicate", "id": 1}, auth=None)
        self.assertEqual(r.status, 400)

    def test_user_org_mutations(self):
        now = self.now()
        uid = self.ctl("GET", "account/users")[-1]["id"]
        self.ctl("POST", "mutate/users", {"op": "delete", "id": uid, "at": now - 300})
        u = self.api_json("/api/v2/incremental/users/cursor.json?start_time=%d" % (now - 400))["users"]
        self.assertEqual([(x["id"], x["active"], x["email"]) for x in u], [(uid, False, None)])
        self.assertEqual(u[0]["updated_at"], zm.iso(now - 300))
        org = self.ctl("GET", "account/organizations")[0]
        self.ctl("POST", "mutate/organizations", {"op": "delete", "id": org["id"], "at": now - 200})
        o = self.api_json("/api/v2/incremental/organizations.json?start_time=%d" % (now - 250))["organizations"]
        self.assertEqual(o[0]["name"], "%d_deleted_%s" % (org["id"], org["name"]))
        self.assertEqual(o[0]["deleted_at"], zm.iso(now - 200))
        c = self.ctl("POST", "mutate/users", {"op": "create", "id": 77, "at": now - 100, "changes": {"name": "N"}})
        self.assertEqual(c["record"]["name"], "N")
        self.assertEqual(self.api_json("/api/v2/users/77.json")["user"]["name"], "N")

    def test_clock(self):
        c0 = self.ctl("GET", "clock")
        self.assertEqual(c0["offset"], 0)
        c1 = self.ctl("POST", "clock", {"advance": 120})
        self.assertAlmostEqual(c1["offset"], 120)
        self.assertGreaterEqual(c1["now"], c0["now"] + 119)
        c2 = self.ctl("POST", "clock", {"set_offset": -5})
        self.assertAlmostEqual(c2["offset"], -5)
        self.reset()
        self.assertEqual(self.ctl("GET", "clock")["offset"], 0)
        self.assertEqual(self.ctl("GET", "health"), {"ok": True})


class TestProcesses(unittest.TestCase):
    def _start(self, *extra):
        cmd = [sys.executable, os.path.join(HERE, "zendesk_mock.py"), "--port", "0", "--quiet"] + list(extra)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._stop, p)
        t = time.time()
        line = p.stdout.readline()
        return p, line, time.time() - t

    def _stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stdout.close()
        p.stderr.close()

    def test_cli_and_mockctl(self):
        p, line, took = self._start()
        self.assertRegex(line, r"^zendesk mock listening on http://127\.0\.0\.1:\d+\n$")
        self.assertLess(took, 2.0)
        url = line.split()[-1]
        ctl = [sys.executable, os.path.join(HERE, "mockctl.py"), "--url", url]

        def run(*args):
            return subprocess.run(ctl + list(args), capture_output=True, text=True, timeout=30)
        self.assertEqual(json.loads(run("health").stdout), {"ok": True})
        self.assertEqual(json.loads(run("reset", '{"tickets":50}').stdout)["config"]["tickets"], 50)
        self.assertEqual(len(json.loads(run("account", "tickets").stdout)), 50)
        self.assertEqual(json.loads(run("fault", '{"kind":"500"}').stdout)["faults"][0]["kind"], "500")
        self.assertEqual(len(json.loads(run("faults").stdout)), 1)
        self.assertEqual(run("clear-faults").returncode, 0)
        self.assertEqual(json.loads(run("clock", '{"advance":120}').stdout)["offset"], 120)
        self.assertEqual(run("mutate", "tickets", '{"op":"update","id":1,"changes":{"subject":"x"}}').returncode, 0)
        self.assertEqual(len(json.loads(run("account", "tickets", "--visible").stdout)), 49)
        self.assertEqual(json.loads(run("requests").stdout), [])
        self.assertEqual(run("clear-requests").returncode, 0)
        bad = run("account", "nope")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("404", bad.stderr)

    def test_big_account_starts_fast(self):
        p, line, took = self._start("--tickets", "100000", "--users", "20000", "--events-per-ticket", "3",
                                    "--rate-limit", "0")
        self.assertIn("listening", line)
        self.assertLess(took, 8.0)
        url = urlsplit(line.split()[-1])
        c = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        t = time.time()
        c.request("GET", "/api/v2/incremental/tickets/cursor.json?start_time=1690000000",
                  headers={"Authorization": BASIC, "Accept-Encoding": "gzip"})
        r = c.getresponse()
        d = json.loads(gzip.decompress(r.read()))
        self.assertEqual(len(d["tickets"]), 1000)
        c.request("GET", "/api/v2/incremental/tickets/cursor.json?cursor=" + quote(d["after_cursor"], safe=""),
                  headers={"Authorization": BASIC})
        d2 = json.loads(c.getresponse().read())
        self.assertEqual(len(d2["tickets"]), 1000)
        self.assertLess(time.time() - t, 5.0)
        c.close()


if __name__ == "__main__":
    unittest.main()
