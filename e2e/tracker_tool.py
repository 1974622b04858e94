#!/usr/bin/env python3
"""Helpers for e2e/run.sh (Python standard library only).

Every network call goes to 127.0.0.1 and nowhere else: URLs with any other
host are refused.

  tracker_tool.py free-ports N               N distinct free TCP ports on 127.0.0.1
  tracker_tool.py infohash FILE.torrent      the torrent's info_hash, hex
  tracker_tool.py wait-up URL SECONDS        poll an admin /check URL until "STILL-ALIVE"
  tracker_tool.py scrape URL HEX             print "complete=C downloaded=D incomplete=I"
  tracker_tool.py wait-scrape URL HEX SECONDS COND...
        poll the scrape until every COND holds (COND is e.g. complete>=1,
        downloaded>=1, incomplete==0); exit 0 once they do, 1 at the deadline.
  tracker_tool.py quote HEX                  the info_hash %-encoded, as a query value
  tracker_tool.py get URL                    GET URL; print the body
  tracker_tool.py announce URL HEX           one announce (started, left=1) of a
        made-up peer; print "failure reason: R" or "interval=N peers=P"

Responses are decoded with a strict bencode decoder: sorted unique keys,
canonical integers and no trailing bytes, as clients such as anacrolix
require.
"""

import hashlib
import operator
import socket
import sys
import time
import urllib.parse
import urllib.request


class BencodeError(ValueError):
    pass


def bdecode(data):
    """Decode one canonical bencoded value that spans all of data."""
    value, end = _decode(data, 0)
    if end != len(data):
        raise BencodeError("trailing bytes at offset %d" % end)
    return value


def _decode(b, i):
    if i >= len(b):
        raise BencodeError("truncated")
    c = b[i:i + 1]
    if c == b"i":
        end = b.index(b"e", i)
        s = b[i + 1:end]
        if not s or s == b"-0" or (s.lstrip(b"-").startswith(b"0") and s != b"0") or s.startswith(b"--"):
            raise BencodeError("non-canonical integer %r" % s)
        return int(s), end + 1
    if c == b"l":
        out, i = [], i + 1
        while b[i:i + 1] != b"e":
            v, i = _decode(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i, last = {}, i + 1, None
        while b[i:i + 1] != b"e":
            k, i = _decode(b, i)
            if not isinstance(k, bytes):
                raise BencodeError("dict key is not a string")
            if last is not None and k <= last:
                raise BencodeError("dict keys unsorted or repeated at %r" % k)
            last = k
            out[k], i = _decode(b, i)
        return out, i + 1
    if c.isdigit():
        colon = b.index(b":", i)
        s = b[i:colon]
        if s != b"0" and s.startswith(b"0"):
            raise BencodeError("non-canonical length %r" % s)
        n = int(s)
        if colon + 1 + n > len(b):
            raise BencodeError("string runs past the end")
        return b[colon + 1:colon + 1 + n], colon + 1 + n
    raise BencodeError("unexpected byte %r at offset %d" % (c, i))


def info_span(b):
    """Return the raw bytes of the top-level "info" value of a torrent."""
    if b[:1] != b"d":
        raise BencodeError("not a dict")
    i = 1
    while b[i:i + 1] != b"e":
        k, i = _decode(b, i)
        start = i
        _, i = _decode(b, i)
        if k == b"info":
            return b[start:i]
    raise BencodeError("no info dict")


def loopback_only(url):
    host = urllib.parse.urlsplit(url).hostname
    if host != "127.0.0.1":
        sys.exit("tracker_tool: refusing non-loopback URL %r" % url)
    return url


def get(url, timeout=3):
    # No proxy: a proxy from the environment would send the request elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(loopback_only(url), timeout=timeout) as r:
        return r.status, r.read()


def scrape(url, hexhash):
    ih = bytes.fromhex(hexhash)
    status, body = get(url + "?info_hash=" + urllib.parse.quote_from_bytes(ih, safe=""))
    if status != 200:
        raise RuntimeError("scrape: HTTP %d" % status)
    d = bdecode(body)
    if b"failure reason" in d:
        raise RuntimeError("scrape: failure reason %r" % d[b"failure reason"])
    files = d[b"files"]
    if ih not in files:
        raise RuntimeError("scrape: hash missing from files: %r" % body)
    f = files[ih]
    return {k.decode(): f[k] for k in (b"complete", b"downloaded", b"incomplete")}


OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt}


def parse_cond(s):
    for op in (">=", "<=", "==", ">", "<"):
        if op in s:
            k, v = s.split(op, 1)
            return k.strip(), op, int(v)
    sys.exit("tracker_tool: bad condition %r" % s)


def fmt(c):
    return "complete=%d downloaded=%d incomplete=%d" % (c["complete"], c["downloaded"], c["incomplete"])


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "free-ports":
        socks = []
        for _ in range(int(argv[2])):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
        for s in socks:
            s.close()
    elif cmd == "infohash":
        with open(argv[2], "rb") as f:
            print(hashlib.sha1(info_span(f.read())).hexdigest())
    elif cmd == "wait-up":
        deadline = time.monotonic() + float(argv[3])
        while True:
            try:
                status, body = get(argv[2], timeout=1)
                if status == 200 and body.strip() == b"STILL-ALIVE":
                    return 0
            except OSError:
                pass
            if time.monotonic() > deadline:
                print("tracker did not answer %s in time" % argv[2])
                return 1
            time.sleep(0.1)
    elif cmd == "scrape":
        print(fmt(scrape(argv[2], argv[3])))
    elif cmd == "quote":
        print(urllib.parse.quote_from_bytes(bytes.fromhex(argv[2]), safe=""))
    elif cmd == "get":
        status, body = get(argv[2])
        sys.stdout.write(body.decode("utf-8", "replace"))
        return 0 if status == 200 else 1
    elif cmd == "announce":
        q = urllib.parse.urlencode({
            "info_hash": bytes.fromhex(argv[3]),
            "peer_id": b"-E2E001-" + b"%012d" % (time.time_ns() % 10**12),
            "port": 6999, "uploaded": 0, "downloaded": 0, "left": 1,
            "event": "started", "compact": 1,
        })
        status, body = get(argv[2] + "?" + q)
        d = bdecode(body)
        if b"failure reason" in d:
            print("failure reason: " + d[b"failure reason"].decode("utf-8", "replace"))
        else:
            print("interval=%d peers=%d" % (d.get(b"interval", -1), len(d.get(b"peers", b"")) // 6))
    elif cmd == "wait-scrape":
        url, hexhash, secs = argv[2], argv[3], float(argv[4])
        conds = [parse_cond(s) for s in argv[5:]]
        deadline = time.monotonic() + secs
        last, err = None, None
        while True:
            try:
                last, err = scrape(url, hexhash), None
                if all(OPS[op](last[k], v) for k, op, v in conds):
                    print(fmt(last))
                    return 0
            except (OSError, ValueError, RuntimeError, KeyError) as e:
                err = e
            if time.monotonic() > deadline:
                want = " ".join(argv[5:])
                print("wanted %s within %ss; last: %s" % (want, argv[4], fmt(last) if last else err))
                return 1
            time.sleep(0.25)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
