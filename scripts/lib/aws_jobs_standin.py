#!/usr/bin/env python3
"""A stand-in for AWS IoT Jobs and MQTT-based file delivery (streams) for scripts/qemu-e2e.sh
(QEMU_E2E_OTA=1): one OTA job for one thing, its image served as CBOR blocks.

Python standard library only (ssl, socket, json): a minimal MQTT 3.1.1 client (CONNECT,
SUBSCRIBE at QoS 0, PUBLISH at QoS 0, PINGREQ), a CBOR encoder/decoder for the few types the
stream protocol uses. It is the same protocol as tests/support/aws_jobs.rs (the Rust tests'
stand-in), written again because the firmware step of CI runs after the host build outputs are
freed.

  aws_jobs_standin.py --port P --ca ca.crt --cert service.crt --key service.key \
      --thing THING --job JOB --stream STREAM --image image.bin --signature sig.der

Serves:
  $aws/things/<thing>/jobs/$next/get      -> .../$next/get/accepted (the job while QUEUED or
                                             IN_PROGRESS, then no execution)
  $aws/things/<thing>/jobs/<job>/update   -> records the status (printed as UPDATE lines)
  $aws/things/<thing>/streams/<s>/get/cbor -> one .../data/cbor message per wanted block
                                             (o, b bitmap, n), or .../rejected/cbor

Prints READY once subscribed, one line per request/block/update, and
`COMPLETE <blocks> blocks, <bytes> payload bytes` once every block was served at least once.
"""

import argparse
import base64
import json
import os
import socket
import ssl
import sys
import time


def log(*args):
    print(*args, flush=True)


# --- CBOR (RFC 8949), the subset of the stream protocol ------------------------------------


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + n.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + n.to_bytes(4, "big")


def cbor_encode(v):
    if isinstance(v, bool) or v is None:
        raise TypeError(v)
    if isinstance(v, int):
        return cbor_head(0, v)
    if isinstance(v, (bytes, bytearray)):
        return cbor_head(2, len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, dict):
        out = cbor_head(5, len(v))
        for k, x in v.items():
            out += cbor_encode(k) + cbor_encode(x)
        return out
    raise TypeError(v)


def cbor_decode(b, i=0):
    """(value, next index); ints, byte and text strings, maps, arrays."""
    ib = b[i]
    major, info = ib >> 5, ib & 31
    i += 1
    if info < 24:
        n = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        n = int.from_bytes(b[i:i + size], "big")
        i += size
    else:
        raise ValueError("indefinite lengths are not used")
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major == 2:
        return bytes(b[i:i + n]), i + n
    if major == 3:
        return b[i:i + n].decode(), i + n
    if major == 4:
        out = []
        for _ in range(n):
            x, i = cbor_decode(b, i)
            out.append(x)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = cbor_decode(b, i)
            x, i = cbor_decode(b, i)
            out[k] = x
        return out, i
    raise ValueError(f"CBOR major type {major}")


# --- MQTT 3.1.1, the subset a responder needs ----------------------------------------------


def varint(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


class Mqtt:
    def __init__(self, port, ca, cert, key, client_id, keepalive=60):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.keepalive = keepalive
        self.last_sent = time.monotonic()
        body = mstr("MQTT") + bytes([4, 0x02]) + keepalive.to_bytes(2, "big") + mstr(client_id)
        self.send(0x10, body)
        kind, payload = self.read_packet(block=True)
        if kind >> 4 != 2 or len(payload) < 2 or payload[1] != 0:
            raise RuntimeError(f"CONNACK refused: {kind:#x} {payload!r}")

    def send(self, first, body):
        self.sock.sendall(bytes([first]) + varint(len(body)) + body)
        self.last_sent = time.monotonic()

    def read_exact(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("broker closed the connection")
            out += chunk
        return bytes(out)

    def read_packet(self, block=False):
        """(first byte, body), or None after a second without a packet (block=False)."""
        self.sock.settimeout(10 if block else 1)
        try:
            first = self.read_exact(1)[0]
        except (socket.timeout, TimeoutError):
            if block:
                raise
            return None
        self.sock.settimeout(10)
        n, shift = 0, 0
        while True:
            d = self.read_exact(1)[0]
            n |= (d & 0x7F) << shift
            shift += 7
            if not d & 0x80:
                break
        return first, self.read_exact(n)

    def subscribe(self, topics):
        body = (1).to_bytes(2, "big") + b"".join(mstr(t) + b"\x00" for t in topics)
        self.send(0x82, body)
        while True:
            kind, payload = self.read_packet(block=True)
            if kind >> 4 == 9:
                if any(c == 0x80 for c in payload[2:]):
                    raise RuntimeError(f"SUBACK refused a topic: {payload[2:]!r}")
                return

    def publish(self, topic, payload):
        self.send(0x30, mstr(topic) + payload)

    def ping_if_due(self):
        if time.monotonic() - self.last_sent > self.keepalive / 2:
            self.send(0xC0, b"")


def main():
    ap = argparse.ArgumentParser()
    for a in ("port", "ca", "cert", "key", "thing", "job", "stream", "image", "signature"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()

    image = open(args.image, "rb").read()
    sig_b64 = base64.b64encode(open(args.signature, "rb").read()).decode()
    job = {
        "id": args.job,
        "status": "QUEUED",
        "details": {},
        "document": {
            "afr_ota": {
                "protocols": ["MQTT"],
                "streamname": args.stream,
                "files": [{
                    "filepath": "firmware.bin",
                    "filesize": len(image),
                    "fileid": 0,
                    "certfile": "codesign.crt",
                    "sig-sha256-ecdsa": sig_b64,
                }],
            }
        },
    }
    thing = args.thing
    base = f"$aws/things/{thing}"
    mq = Mqtt(int(args.port), args.ca, args.cert, args.key, f"aws-jobs-standin-{os.getpid()}")
    mq.subscribe([f"{base}/jobs/$next/get", f"{base}/jobs/+/update", f"{base}/streams/+/get/cbor"])
    log("READY")

    served = {}  # block index -> sends
    block_size = None
    complete = False
    while True:
        mq.ping_if_due()
        pkt = mq.read_packet()
        if pkt is None:
            continue
        first, body = pkt
        kind = first >> 4
        if kind == 13:  # PINGRESP
            continue
        if kind != 3:
            continue
        qos = (first >> 1) & 3
        tlen = int.from_bytes(body[:2], "big")
        topic = body[2:2 + tlen].decode()
        at = 2 + tlen + (2 if qos else 0)
        payload = body[at:]
        parts = topic.split("/")
        if topic == f"{base}/jobs/$next/get":
            req = json.loads(payload or b"{}")
            answer = {"clientToken": req.get("clientToken"), "timestamp": 1}
            if job["status"] in ("QUEUED", "IN_PROGRESS"):
                answer["execution"] = {
                    "jobId": job["id"], "thingName": thing, "status": job["status"],
                    "statusDetails": job["details"], "jobDocument": job["document"],
                    "queuedAt": 1, "versionNumber": 1, "executionNumber": 1,
                }
            log(f"NEXT {job['id'] if 'execution' in answer else None} ({job['status']})")
            mq.publish(f"{base}/jobs/$next/get/accepted", json.dumps(answer).encode())
        elif len(parts) == 6 and parts[3] == "jobs" and parts[5] == "update":
            v = json.loads(payload or b"{}")
            status, details = v.get("status", ""), v.get("statusDetails")
            log(f"UPDATE {parts[4]} {status} {json.dumps(details, separators=(',', ':'))}")
            if parts[4] == job["id"]:
                job["status"] = status
                if isinstance(details, dict):
                    job["details"] = details
        elif len(parts) == 7 and parts[3] == "streams" and parts[5:] == ["get", "cbor"]:
            stream = parts[4]
            try:
                req, _ = cbor_decode(payload)
                token, f, l = req.get("c", ""), req["f"], req["l"]
                o, b, n = req.get("o", 0), req.get("b"), req.get("n")
            except (ValueError, KeyError, IndexError, TypeError) as e:
                log(f"BAD GetStream request: {e}")
                continue
            if stream != args.stream or f != 0 or l <= 0:
                log(f"REJECT stream {stream} file {f}")
                mq.publish(f"{base}/streams/{stream}/rejected/cbor",
                           cbor_encode({"o": "ResourceNotFound", "m": "not found", "c": token}))
                continue
            block_size = l
            blocks = (len(image) + l - 1) // l
            cap = n if n else 131072 // l
            if b is not None:
                wanted = [o + i for i in range(len(b) * 8) if b[i // 8] >> (i % 8) & 1]
            else:
                wanted = list(range(o, blocks))
            wanted = [i for i in wanted if i < blocks][:cap]
            log(f"GET stream {stream} block size {l} offset {o} n {n} -> {len(wanted)} block(s)")
            for i in wanted:
                data = image[i * l:(i + 1) * l]
                mq.publish(f"{base}/streams/{stream}/data/cbor",
                           cbor_encode({"f": f, "i": i, "l": len(data), "p": data}))
                served[i] = served.get(i, 0) + 1
            if not complete and len(served) == blocks:
                complete = True
                sends = sum(served.values())
                log(f"COMPLETE {blocks} blocks of {block_size} bytes, {len(image)} payload bytes, "
                    f"{sends} block sends")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
