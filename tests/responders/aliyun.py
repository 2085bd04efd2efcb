#!/usr/bin/python3
"""Plays Aliyun IoT's side of one-product-one-secret (一型一密) dynamic registration on top of
a Mosquitto broker, for tests/aliyun.rs and examples/aliyun_dynamic_registration.rs.

It shares no code with the `quectel` crate: signatures are computed here with Python's hmac,
password entries are written with `mosquitto_passwd`, and MQTT is spoken with paho-mqtt
(Debian python3-paho-mqtt 1.6.1).

What it does:

* Start-up: for every --device it writes the password entry `{dn}&{pk}` = the registration
  sign HMAC(ProductSecret, "deviceName{dn}productKey{pk}random{random}") (uppercase hex), so
  that the broker accepts the device's registration CONNECT; then SIGHUPs the broker and waits
  until it reloaded. Prints `ready`.
* It follows the broker's log through `$SYS/broker/log/#` (`log_dest topic`). When a client
  whose id carries `authType=register|regnwl` subscribes to `/ext/register` or `/ext/regnwl`
  (Mosquitto only delivers to subscribers: see docs/aliyun.md), it checks the client id, then
  publishes the answer with QoS 1:
    register -> {"productKey","deviceName","deviceSecret"} (a fresh DeviceSecret)
    regnwl   -> {"clientId","productKey","deviceName","deviceToken"}
  and prints `registered <dn> <kind>`.
* Activation: once the device disconnected (or after 5 s), the entry `{dn}&{pk}` becomes the
  one-device-one-secret password HMAC-SHA256(DeviceSecret,
  "clientId{pk}.{dn}deviceName{dn}productKey{pk}") (client id `{pk}.{dn}`, no timestamp: the
  defaults of MqttCredentials) or, for regnwl, the device token. The registration sign no
  longer matches, so registering again gets CONNACK 5 (not authorised), as on Aliyun.
  Prints `activated <dn>`.
* --flashed DN,SECRET,CLIENTID,METHOD: a one-device-one-secret device flashed in the factory;
  its entry is HMAC-METHOD(SECRET, "clientId{CLIENTID}deviceName{DN}productKey{pk}") at start.
* Every message on `/+/+/user/#` and `/sys/#` is printed as `message <topic> <hex payload>`.

Usage: aliyun.py --host H --port P --cafile CA --user U --password PW --pwfile FILE
                 --broker-pid PID --product-key PK --product-secret PS --random R
                 [--sign-method hmacsha256] [--device DN ...] [--flashed DN,SECRET,CLIENTID,METHOD ...]
Exit: on stdin EOF (the parent died or closed it).
"""

import argparse
import hashlib
import hmac
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

HASHES = {"hmacmd5": hashlib.md5, "hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}


def sign(method, key, pairs):
    content = "".join(name + value for name, value in pairs)
    return hmac.new(key.encode(), content.encode(), HASHES[method]).hexdigest().upper()


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse_client_id(client_id):
    """'{id}|k=v,k=v|' -> (id, {k: v}) or None."""
    if client_id.count("|") != 2 or not client_id.endswith("|"):
        return None
    base, params, _ = client_id.split("|")
    out = {}
    for kv in params.split(","):
        if "=" not in kv:
            return None
        k, v = kv.split("=", 1)
        out[k] = v
    return base, out


class Cloud:
    def __init__(self, args):
        self.a = args
        self.lock = threading.Lock()
        self.reloaded = threading.Event()
        self.disconnected = {}  # client id -> Event
        self.client = mqtt.Client(client_id="aliyun-cloud-%d" % os.getpid(), protocol=mqtt.MQTTv311)
        self.client.username_pw_set(args.user, args.password)
        self.client.tls_set(ca_certs=args.cafile, cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()

    def set_password(self, user, password):
        subprocess.run(["mosquitto_passwd", "-b", self.a.pwfile, user, password], check=True,
                       stdout=subprocess.DEVNULL)

    def reload(self):
        self.reloaded.clear()
        os.kill(self.a.broker_pid, signal.SIGHUP)
        if not self.reloaded.wait(10):
            say("error broker did not reload")

    def on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            say("error responder CONNACK %d" % rc)
            return
        client.subscribe([("$SYS/broker/log/#", 0), ("/+/+/user/#", 1), ("/sys/#", 1)])
        self.connected.set()

    def on_message(self, client, userdata, msg):
        if msg.topic.startswith("$SYS/broker/log/"):
            self.on_log(msg.payload.decode(errors="replace"))
            return
        say("message %s %s" % (msg.topic, msg.payload.hex()))

    def on_log(self, line):
        # "<timestamp>: <text>" (log_timestamp true by default)
        text = line.split(": ", 1)[1] if ": " in line else line
        if text.startswith("Reloading config"):
            self.reloaded.set()
            return
        if text.startswith("Client ") and " disconnected" in text:
            cid = text[len("Client "):].split(" disconnected")[0]
            with self.lock:
                ev = self.disconnected.setdefault(cid, threading.Event())
            ev.set()
            return
        # log_type subscribe: "<client id> <qos> <topic>"
        for topic in ("/ext/register", "/ext/regnwl"):
            if text.endswith(" " + topic):
                parts = text[: -len(topic) - 1].rsplit(" ", 1)
                if len(parts) == 2 and parts[1].isdigit():
                    threading.Thread(target=self.answer, args=(parts[0], topic), daemon=True).start()

    def answer(self, client_id, topic):
        a = self.a
        parsed = parse_client_id(client_id)
        if parsed is None:
            say("error unparsable client id")
            return
        _, params = parsed
        kind = params.get("authType")
        if kind not in ("register", "regnwl") or "/ext/" + kind != topic:
            say("error unexpected authType %s" % kind)
            return
        if params.get("securemode") not in ("2", "-2") or params.get("random") != a.random:
            say("error unexpected securemode/random")
            return
        if params.get("signmethod") != a.sign_method:
            say("error unexpected signmethod")
            return
        # The user name is "{dn}&{pk}"; the client id base is "{dn}.{pk}" by default, but the
        # device name is what the broker authenticated: find it among ours.
        dn = next((d for d in a.device if client_id.startswith(d + ".") or client_id.startswith(d + "|")), None)
        if dn is None:
            say("error unknown device in client id")
            return
        with self.lock:
            self.disconnected[client_id] = threading.Event()
        if kind == "register":
            secret = secrets.token_hex(16)
            body = {"productKey": a.product_key, "deviceName": dn, "deviceSecret": secret}
            cid = "%s.%s" % (a.product_key, dn)
            final = sign("hmacsha256", secret, [("clientId", cid), ("deviceName", dn), ("productKey", a.product_key)])
        else:
            token = secrets.token_hex(24)
            body = {"clientId": "nwl%s" % secrets.token_hex(6), "productKey": a.product_key,
                    "deviceName": dn, "deviceToken": token}
            final = token
        self.client.publish(topic, json.dumps(body, separators=(",", ":")), qos=1)
        say("registered %s %s" % (dn, kind))
        self.disconnected[client_id].wait(5)
        self.set_password("%s&%s" % (dn, a.product_key), final)
        self.reload()
        say("activated %s" % dn)

    def run(self):
        a = self.a
        self.client.connect(a.host, a.port, keepalive=60)
        self.client.loop_start()
        if not self.connected.wait(10) or not self.subscribed.wait(10):
            say("error responder could not connect/subscribe")
            sys.exit(1)
        for dn in a.device:
            pw = sign(a.sign_method, a.product_secret,
                      [("deviceName", dn), ("productKey", a.product_key), ("random", a.random)])
            self.set_password("%s&%s" % (dn, a.product_key), pw)
        for entry in a.flashed:
            dn, secret, cid, method = entry.split(",")
            pw = sign(method, secret, [("clientId", cid), ("deviceName", dn), ("productKey", a.product_key)])
            self.set_password("%s&%s" % (dn, a.product_key), pw)
        self.reload()
        say("ready")
        # Until the parent closes stdin.
        while sys.stdin.read(1):
            pass
        self.client.loop_stop()


def main():
    p = argparse.ArgumentParser()
    for name in ("host", "cafile", "user", "password", "pwfile", "product-key", "product-secret", "random"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--broker-pid", type=int, required=True)
    p.add_argument("--sign-method", default="hmacsha256", choices=sorted(HASHES))
    p.add_argument("--device", action="append", default=[])
    p.add_argument("--flashed", action="append", default=[])
    Cloud(p.parse_args()).run()


if __name__ == "__main__":
    main()
