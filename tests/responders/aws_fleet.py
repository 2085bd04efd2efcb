#!/usr/bin/python3
"""A stand-in for AWS IoT fleet provisioning (the MQTT API of CreateCertificateFromCsr,
CreateKeysAndCertificate and RegisterThing, JSON payloads), for the end-to-end tests and the
example of the `quectel` crate.

It is a separate process that uses the paho-mqtt client library (Debian: python3-paho-mqtt
1.6.1) and the `cryptography` package (Debian: python3-cryptography), so nothing of the crate
under test is involved on the "cloud" side. Run it with Debian's /usr/bin/python3.

It connects to the broker (mosquitto set up like AWS IoT Core: mutual TLS, certificate CN =
user name, ACL per user) with a service certificate that may use every topic, and answers:

- $aws/certificates/create-from-csr/json: checks the CSR's signature and key (P-256, P-384 or
  RSA >= 2048), issues a certificate signed by the test CA whose CN is the new certificate id,
  and a one-hour certificateOwnershipToken;
- $aws/certificates/create/json (empty payload): makes an RSA 2048 key and certificate
  (like AWS) and also returns privateKey (PKCS#1 PEM);
- $aws/provisioning-templates/<template>/provision/json: checks the ownership token (unknown,
  used or expired: 400 "InvalidCertificateOwnershipToken" -- this error code is the test
  responder's choice) and the SerialNumber parameter (missing: 400 "InvalidParameters"),
  names the thing <prefix><SerialNumber>, and *activates* the certificate: it appends
  `user <certificateId>` / `topic readwrite dt/<thingName>/#` to the broker's ACL file and
  sends the broker SIGHUP (mosquitto reloads its configuration and ACL), so that the new
  certificate may publish only after RegisterThing, as on AWS. It answers once the broker has
  logged the reload.

Answers go to <request topic>/accepted or /rejected, QoS 1. Lines on stdout, for the test:
"READY" once subscribed, then "ISSUED <id> csr|keys", "REGISTERED <thing> <id>",
"REJECTED <operation> <status> <errorCode>". Diagnostics go to stderr. The process exits when
its stdin is closed (so it never outlives the test that started it).
"""

import argparse
import datetime
import json
import os
import secrets
import signal
import ssl
import sys
import threading
import time

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CREATE = "$aws/certificates/create/json"
CREATE_FROM_CSR = "$aws/certificates/create-from-csr/json"
PROVISION_PREFIX = "$aws/provisioning-templates/"
PROVISION_SUFFIX = "/provision/json"
TOKEN_LIFETIME_S = 3600


def log(*args):
    print("[aws_fleet.py]", *args, file=sys.stderr, flush=True)


def say(line):
    print(line, flush=True)


class Responder:
    def __init__(self, args):
        self.args = args
        with open(args.ca_key, "rb") as f:
            self.ca_key = serialization.load_pem_private_key(f.read(), password=None)
        with open(args.ca, "rb") as f:
            self.ca_cert = x509.load_pem_x509_certificate(f.read())
        self.tokens = {}  # token -> (certificate id, issued at)
        self.lock = threading.Lock()
        self.client = mqtt.Client(client_id="aws-fleet-responder", protocol=mqtt.MQTTv5)
        self.client.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.key)
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message
        self.client.on_disconnect = self.on_disconnect

    # -- MQTT plumbing ---------------------------------------------------------------------

    def on_connect(self, client, userdata, flags, rc, properties=None):
        log("connected", rc)
        client.subscribe(
            [
                (CREATE, 1),
                (CREATE_FROM_CSR, 1),
                (PROVISION_PREFIX + "+" + PROVISION_SUFFIX, 1),
            ]
        )

    def on_subscribe(self, client, userdata, mid, granted, properties=None):
        log("subscribed", [str(g) for g in granted])
        say("READY")

    def on_disconnect(self, client, userdata, rc, properties=None):
        log("disconnected", rc)

    def on_message(self, client, userdata, msg):
        try:
            self.handle(msg.topic, msg.payload)
        except Exception as e:  # a bug here must show up in the test output
            log("handler failed:", repr(e))

    def answer(self, request_topic, accepted, body):
        topic = request_topic + ("/accepted" if accepted else "/rejected")
        self.client.publish(topic, json.dumps(body), qos=1)

    def reject(self, topic, operation, status, code, message):
        say(f"REJECTED {operation} {status} {code}")
        self.answer(
            topic,
            False,
            {"statusCode": status, "errorCode": code, "errorMessage": message},
        )

    # -- the provisioning API --------------------------------------------------------------

    def handle(self, topic, payload):
        if topic == CREATE_FROM_CSR:
            self.create_from_csr(topic, payload)
        elif topic == CREATE:
            self.create_keys(topic, payload)
        elif topic.startswith(PROVISION_PREFIX) and topic.endswith(PROVISION_SUFFIX):
            template = topic[len(PROVISION_PREFIX) : -len(PROVISION_SUFFIX)]
            self.register_thing(topic, template, payload)
        else:
            log("ignoring", topic)

    def issue(self, public_key, how):
        cert_id = secrets.token_hex(32)
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cert_id)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = (cert_id, time.monotonic())
        say(f"ISSUED {cert_id} {how}")
        return cert_id, cert.public_bytes(serialization.Encoding.PEM).decode(), token

    def create_from_csr(self, topic, payload):
        op = "CreateCertificateFromCsr"
        try:
            request = json.loads(payload)
            csr = x509.load_pem_x509_csr(request["certificateSigningRequest"].encode())
        except Exception as e:
            return self.reject(topic, op, 400, "InvalidPayload", f"bad request: {e}")
        if not csr.is_signature_valid:
            return self.reject(topic, op, 400, "InvalidCsr", "CSR signature does not verify")
        key = csr.public_key()
        ok = (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1")) or (
            isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
        )
        if not ok:
            return self.reject(topic, op, 400, "InvalidCsr", "key type not accepted")
        cert_id, pem, token = self.issue(key, "csr")
        self.answer(
            topic,
            True,
            {"certificateOwnershipToken": token, "certificateId": cert_id, "certificatePem": pem},
        )

    def create_keys(self, topic, payload):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert_id, pem, token = self.issue(key.public_key(), "keys")
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        self.answer(
            topic,
            True,
            {
                "certificateId": cert_id,
                "certificatePem": pem,
                "privateKey": private,
                "certificateOwnershipToken": token,
            },
        )

    def register_thing(self, topic, template, payload):
        op = "RegisterThing"
        if template != self.args.template:
            return self.reject(topic, op, 404, "ResourceNotFoundException", f"no template {template}")
        try:
            request = json.loads(payload)
            token = request["certificateOwnershipToken"]
            parameters = request.get("parameters", {})
        except Exception as e:
            return self.reject(topic, op, 400, "InvalidPayload", f"bad request: {e}")
        with self.lock:
            entry = self.tokens.pop(token, None)
        if entry is None or time.monotonic() - entry[1] > TOKEN_LIFETIME_S:
            return self.reject(
                topic, op, 400, "InvalidCertificateOwnershipToken", "unknown, used or expired ownership token"
            )
        cert_id = entry[0]
        serial = parameters.get("SerialNumber")
        if not isinstance(serial, str) or not serial or not all(c.isalnum() or c in "_-" for c in serial):
            return self.reject(topic, op, 400, "InvalidParameters", "SerialNumber missing or invalid")
        thing = self.args.thing_prefix + serial
        self.activate(cert_id, thing)
        say(f"REGISTERED {thing} {cert_id}")
        self.answer(
            topic,
            True,
            {
                "deviceConfiguration": {"telemetryTopic": f"dt/{thing}/telemetry"},
                "thingName": thing,
            },
        )

    def activate(self, cert_id, thing):
        """Grant the new certificate its thing's topics, then make mosquitto reload the ACL."""
        with open(self.args.acl, "a") as f:
            f.write(f"\n# activated by aws_fleet.py\nuser {cert_id}\ntopic readwrite dt/{thing}/#\n")
        start = os.path.getsize(self.args.broker_log)
        os.kill(self.args.broker_pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.args.broker_log, "rb") as f:
                f.seek(start)
                if b"Reloading config" in f.read():
                    # The reload runs right after that line, in the broker's only thread,
                    # before it reads our next packet.
                    return
            time.sleep(0.02)
        log("the broker did not log a reload within 10 s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="CA certificate (PEM) of the broker and of issued certificates")
    p.add_argument("--ca-key", required=True, help="CA private key (PEM) that signs issued certificates")
    p.add_argument("--cert", required=True, help="service certificate (full access)")
    p.add_argument("--key", required=True, help="service key")
    p.add_argument("--template", required=True, help="the provisioning template name served")
    p.add_argument("--thing-prefix", default="thing-")
    p.add_argument("--acl", required=True, help="the broker's acl_file, appended to on RegisterThing")
    p.add_argument("--broker-pid", type=int, required=True, help="sent SIGHUP to reload the ACL")
    p.add_argument("--broker-log", required=True, help="watched for the reload")
    args = p.parse_args()

    r = Responder(args)

    def watch_stdin():
        sys.stdin.read()
        log("stdin closed: exiting")
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    r.client.connect(args.host, args.port, keepalive=60)
    r.client.loop_forever(retry_first_connection=False)


if __name__ == "__main__":
    main()
