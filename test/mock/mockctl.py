#!/usr/bin/env python3
"""Tiny client for the zendesk mock's control API (/__mock/...). Stdlib only.

Usage: mockctl.py [--url http://127.0.0.1:8765] COMMAND [ARGS]

  health                      GET  /__mock/health
  reset ['{"tickets":50}']    POST /__mock/reset
  config ['{"holdback":0}']   POST /__mock/config (GET without a body)
  requests                    GET  /__mock/requests (JSON list)
  clear-requests              DELETE /__mock/requests
  fault '{...}' | '[...]'     POST /__mock/faults
  faults                      GET  /__mock/faults
  clear-faults                DELETE /__mock/faults
  mutate RESOURCE '{...}'     POST /__mock/mutate/RESOURCE
  account RESOURCE [--visible] GET /__mock/account/RESOURCE (JSON array)
  clock ['{"advance":120}']   POST /__mock/clock (GET without a body)

Prints the JSON answer on stdout; exits 1 on HTTP errors (answer on stderr),
2 on usage errors, 3 when the server cannot be reached.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def call(url, method, path, body=None, timeout=60):
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw.decode("utf-8")) if raw else None


def parse_json(text, what):
    try:
        return json.loads(text)
    except ValueError as e:
        raise SystemExit("mockctl: %s is not valid JSON: %s" % (what, e))


def main(argv=None):
    p = argparse.ArgumentParser(description="zendesk mock control client")
    p.add_argument("--url", default=os.environ.get("ZENDESK_MOCK_URL", "http://127.0.0.1:8765"),
                   help="mock base URL (default $ZENDESK_MOCK_URL or http://127.0.0.1:8765)")
    p.add_argument("--compact", action="store_true", help="print compact JSON")
    p.add_argument("command")
    p.add_argument("args", nargs="*")
    p.add_argument("--visible", action="store_true", help="account: only records visible to exports")
    a = p.parse_args(argv)
    cmd, args = a.command, a.args

    def arg_json(i, default=None):
        return parse_json(args[i], "argument %d" % (i + 1)) if len(args) > i else default

    try:
        if cmd == "health":
            out = call(a.url, "GET", "/__mock/health")
        elif cmd == "reset":
            out = call(a.url, "POST", "/__mock/reset", arg_json(0, {}))
        elif cmd == "config":
            body = arg_json(0)
            out = call(a.url, "POST", "/__mock/config", body) if body is not None else \
                call(a.url, "GET", "/__mock/config")
        elif cmd == "requests":
            out = call(a.url, "GET", "/__mock/requests")
        elif cmd == "clear-requests":
            out = call(a.url, "DELETE", "/__mock/requests")
        elif cmd == "fault":
            if not args:
                p.error("fault needs a JSON fault spec")
            out = call(a.url, "POST", "/__mock/faults", arg_json(0))
        elif cmd == "faults":
            out = call(a.url, "GET", "/__mock/faults")
        elif cmd == "clear-faults":
            out = call(a.url, "DELETE", "/__mock/faults")
        elif cmd == "mutate":
            if len(args) < 2:
                p.error("mutate needs RESOURCE and a JSON body")
            out = call(a.url, "POST", "/__mock/mutate/" + args[0], arg_json(1))
        elif cmd == "account":
            if not args:
                p.error("account needs RESOURCE")
            out = call(a.url, "GET", "/__mock/account/" + args[0] + ("?visible=1" if a.visible else ""))
        elif cmd == "clock":
            body = arg_json(0)
            out = call(a.url, "POST", "/__mock/clock", body) if body is not None else \
                call(a.url, "GET", "/__mock/clock")
        else:
            p.error("unknown command %r" % cmd)
            return 2
    except urllib.error.HTTPError as e:
        sys.stderr.write("mockctl: HTTP %d: %s\n" % (e.code, e.read().decode("utf-8", "replace")))
        return 1
    except (urllib.error.URLError, OSError) as e:
        sys.stderr.write("mockctl: cannot reach %s: %s\n" % (a.url, e))
        return 3
    if a.compact:
        sys.stdout.write(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
