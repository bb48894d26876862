#!/usr/bin/env python3
"""fuzz/make_seeds.py OUTDIR [LIST]: the seed corpus of the zd_fuzz target
(LIST: file to write the names of the fixture export pages to).

An input is one byte (bits 0-1: resource 0 tickets, 1 ticket_events,
2 users, 3 organizations; bits 2-3: Content-Type) followed by the body.
Seeds: every test/fixtures/zendesk/*.json as a body of the resource its
name says (the others under all four), the error bodies of errors.json,
a page of the mock's account per resource when a mock URL is given, the
bad-input shapes of issue 4 (not JSON, wrong shapes, fields of unexpected
types, deep nesting, \\u0000, invalid surrogates, huge numbers) and the
committed regression inputs in fuzz/regressions/.
"""
import glob
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = {"tickets": 0, "ticket_events": 1, "users": 2, "organizations": 3}
KEYS = ["tickets", "ticket_events", "users", "organizations"]


def write(out, res, body, ct=0):
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    data = bytes([(RES[res] & 3) | (ct << 2)]) + body
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    return name


def bad_shapes():
    rec = {"id": 1, "updated_at": "2024-01-01T00:00:00Z", "generated_timestamp": 1704067200,
           "timestamp": 1704067200, "tags": ["a", "b"], "subject": "s", "via": {"channel": "web"}}
    for key in KEYS:
        page = lambda recs, **kw: json.dumps(dict({key: recs, "end_of_stream": True,
                                                   "after_cursor": "MTcwNDA2NzIwMC4wfHwxfA==",
                                                   "end_time": 1704067200, "next_page": None}, **kw))
        yield key, "not json at all"
        yield key, "<html><body>maintenance</body></html>"
        yield key, "{}"
        yield key, "[]"
        yield key, json.dumps({"end_of_stream": True})
        yield key, json.dumps({key: "x", "end_of_stream": True})
        yield key, json.dumps({key: [1, "two", None, []], "end_of_stream": True})
        yield key, page([rec], end_of_stream="yes")
        yield key, page([rec], end_time="1704067200")
        yield key, page([rec], end_time=1.5)
        yield key, page([rec], after_cursor=5)
        yield key, page([dict(rec, id="12"), dict(rec, id=1.0), dict(rec, id=True),
                         dict(rec, id=18446744073709551615)])
        yield key, page([dict(rec, tags="notanarray", via=[1, 2], updated_at=17,
                              generated_timestamp="2024-01-01T00:00:00+0530",
                              created_at="2024-02-30T00:00:00Z", subject=["x"],
                              is_public="true", priority=1e400)])
        yield key, page([dict(rec, subject="nul\u0000inside", description="\u0000")])
        yield key, page([rec]).replace('"s"', '"\\ud800 lone \\udc00 and \\ud83d\\ude00"')
        yield key, "[" * 100 + "]" * 100
        yield key, '{"%s": [%s{"id": 1}%s]}' % (key, "[" * 70, "]" * 70)
        yield key, page([dict(rec, custom_fields=[{"id": 1, "value": v} for v in
                                                  (None, "007", 12345678901234, 12.50, True, [], ["a"])])])
        yield key, page([rec])[:-7]
        yield key, page([rec]) + " trailing"
        yield key, page([dict(rec, id=-9223372036854775808, timestamp=99999999999999,
                              updated_at="9999-12-31T23:59:59Z", generated_timestamp=-1)])
        yield key, page([dict(rec, big=123456789012345678901234567890, f=-0.0, e=1e-300)])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    n0 = len(os.listdir(out))
    fixtures = []
    for path in sorted(glob.glob(os.path.join(ROOT, "test", "fixtures", "zendesk", "*.json"))):
        with open(path, "rb") as f:
            body = f.read()
        base = os.path.basename(path)
        if base == "errors.json":
            for case in json.loads(body)["cases"]:
                b = case.get("body", case.get("body_text", ""))
                write(out, "tickets", b if isinstance(b, str) else json.dumps(b))
            continue
        hit = [k for k in KEYS if ("_%s_" % k) in base or base.startswith(k + "_")]
        if "ticket_events" in base:
            hit = ["ticket_events"]
        for k in (hit or KEYS):
            name = write(out, k, body)
            if hit and base.startswith("incremental_") and not (k in ("tickets", "users") and "_time_" in base):
                fixtures.append(name)
    for key, body in bad_shapes():
        write(out, key, body)
    for path in sorted(glob.glob(os.path.join(ROOT, "fuzz", "regressions", "*"))):
        if os.path.isfile(path) and not path.endswith(".md"):
            with open(path, "rb") as f:
                data = f.read()
            with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
    # the export pages among the fixtures: the harness must map them
    # without an error (a target that rejects everything tests nothing)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write("\n".join(fixtures) + "\n")
    print(len(os.listdir(out)) - n0)


if __name__ == "__main__":
    main()
