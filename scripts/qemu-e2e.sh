#!/usr/bin/env bash
# End-to-end test of the firmware under QEMU: the customer's AWS IoT flow
# (quectel_example_app::run_modem_tls) running as Cortex-M4F firmware on QEMU's mps2-an386,
# its UART0 wired (Unix socket) to the mock modem, whose TLS socket reaches a private mosquitto
# set up like AWS IoT Core.
#
#   scripts/qemu-e2e.sh
#
# What it does:
#   1. generates a throw-away PKI with openssl (P-256): a CA, a server certificate for
#      localhost/127.0.0.1, the device certificate (CN = client id = thing name) and an
#      "observer" certificate (the AWS console's MQTT test client);
#   2. starts mosquitto on 127.0.0.1 and a free port like AWS IoT: TLS 1.3 only,
#      require_certificate, use_identity_as_username, ACL by %u (the thing may use
#      <thing>/#), max_qos 1;
#   3. builds the firmware (examples/qemu-mps2) with the port and the PKI baked in: with
#      rustup's cargo if the thumbv7em-none-eabihf target is installed, otherwise with Debian's
#      toolchain (rustc-web, RUSTC_BOOTSTRAP=1, -Zbuild-std=core) — and the mock modem (host);
#   4. starts mosquitto_sub (observer) on the topic, the mock modem on a Unix socket, then
#      `qemu-system-arm -M mps2-an386 ... -serial unix:SOCK -kernel <elf>` (timeout 120 s);
#   5. once mosquitto_sub has printed `Hello, AWS Cloud!`, publishes a downlink
#      (mosquitto_pub, QoS 1) every second until QEMU exits.
# Passes only if QEMU exits 0 (the firmware published, got its PUBACK, received the downlink)
# AND mosquitto_sub saw the hello. Every process it started is stopped on exit.
#
# QEMU_E2E_OTA=1: the firmware's OTA flow instead (feature `ota`, run_ota_aws over RAM-backed
# flash). The PKI also gets a service identity and a code-signing key (self-signed P-256
# certificate); the script makes a random 32-64 KiB image and signs it (openssl dgst -sha256
# -sign: the DER ECDSA signature of AWS code signing); the firmware is built with the
# code-signing certificate, the image's size and its SHA-256 baked in; instead of the
# observer, scripts/lib/aws_jobs_standin.py (python3, standard library only) plays AWS IoT Jobs
# and the stream service for the thing on the same mosquitto (ACL: the thing may use
# $aws/things/<thing>/#, the service $aws/#). Passes only if QEMU exits 0 (the firmware
# downloaded, verified and staged the image, its state partition asks for the swap and the
# update partition's SHA-256 is the image's), the stand-in served every block, and the job was
# reported IN_PROGRESS with "self_test":"ready".
#
# Env:
#   QEMU_E2E_OTA=1           the OTA run described above (modem TLS only)
#   QEMU_E2E_TLS=modem       where TLS runs: modem (run_modem_tls, default) or mcu
#                            (run_mcu_tls: embedded-tls on the MCU over a modem TCP socket)
#   QEMU_E2E_KEEP=1          keep the work directory (logs, PKI) in /tmp
#   QEMU_E2E_TIMEOUT=120     seconds QEMU may run
#   QEMU_E2E_INSTALL=auto    auto: apt-get install missing tools when root (CI); 0: never
#   FW_TARGET_DIR            firmware target dir (default: <repo>/target/firmware)
#   HOST_TARGET_DIR          mock modem target dir (default: $CARGO_TARGET_DIR or <repo>/target)
#   NICE                     prefix of the build commands (default: nice -n 10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FW_DIR="$ROOT/examples/qemu-mps2"
TARGET=thumbv7em-none-eabihf
FW_TARGET_DIR="${FW_TARGET_DIR:-$ROOT/target/firmware}"
HOST_TARGET_DIR="${HOST_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}"
# The builds run from other directories: make relative target dirs absolute.
FW_TARGET_DIR="$(realpath -m "$FW_TARGET_DIR")"
HOST_TARGET_DIR="$(realpath -m "$HOST_TARGET_DIR")"
QEMU_TIMEOUT="${QEMU_E2E_TIMEOUT:-120}"
TLS_MODE="${QEMU_E2E_TLS:-modem}"
case "$TLS_MODE" in
modem) FW_FEATURES=() ;;
mcu) FW_FEATURES=(--features mcu-tls) ;;
*) echo "QEMU_E2E_TLS must be modem or mcu, not '$TLS_MODE'" >&2; exit 2 ;;
esac
OTA="${QEMU_E2E_OTA:-0}"
case "$OTA" in
0) ;;
1)
    [[ $TLS_MODE == modem ]] || { echo "QEMU_E2E_OTA=1 runs over modem TLS only" >&2; exit 2; }
    FW_FEATURES=(--features ota)
    ;;
*) echo "QEMU_E2E_OTA must be 0 or 1, not '$OTA'" >&2; exit 2 ;;
esac
SERVICE=aws-jobs-service
OTA_JOB=qemu-ota-job-1
OTA_STREAM=AFR_OTA-qemu-stream-1
NICE="${NICE-nice -n 10}"
CLIENT_ID=qemu-thing-1
TOPIC="$CLIENT_ID/hello"
OBSERVER=test-observer
HELLO='Hello, AWS Cloud!'
DOWNLINK='{"message": "Hello from the cloud!"}'

T_START=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
log() { printf '[e2e %6.1fs] %s\n' "$(( $(date +%s%N) - T_START ))e-9" "$*"; }
die() { log "FAIL: $*"; exit 1; }

# --- tools ------------------------------------------------------------------------------------

need_pkgs=()
for tool in qemu-system-arm:qemu-system-arm mosquitto:mosquitto mosquitto_sub:mosquitto-clients \
            mosquitto_pub:mosquitto-clients openssl:openssl timeout:coreutils python3:python3; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_pkgs+=("${tool#*:}")
done
# shellcheck source=lib/thumb.sh
source "$ROOT/scripts/lib/thumb.sh"
route="$(thumb_route "$TARGET")" || exit 2
if [[ $route == debian ]]; then
    [[ -x /usr/bin/rustc && -x /usr/bin/cargo && -d /usr/lib/rustlib/src/rust/library ]] \
        || need_pkgs+=(rustc-web cargo-web rust-web-src)
    # The thumb targets link with rust-lld: Debian's /usr/bin/rust-lld (rust-web-llvm) is a
    # link to lld-22, which nothing pulls in.
    [[ -e /usr/bin/rust-lld ]] || command -v ld.lld-22 >/dev/null 2>&1 || need_pkgs+=(lld-22)
fi
if ((${#need_pkgs[@]})); then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    if [[ "${QEMU_E2E_INSTALL:-auto}" != 0 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${need_pkgs[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
    else
        die "missing packages: ${need_pkgs[*]} (apt-get install -y --no-install-recommends ${need_pkgs[*]})"
    fi
fi
if [[ $route == debian && ! -e /usr/bin/rust-lld ]]; then
    # No rust-lld (rust-web-llvm missing): link with lld-22 directly.
    export CARGO_TARGET_THUMBV7EM_NONE_EABIHF_LINKER=ld.lld-22
fi
host_cargo=cargo
command -v cargo >/dev/null 2>&1 || host_cargo=/usr/bin/cargo

# --- work dir and cleanup ---------------------------------------------------------------------

WORK="$(mktemp -d /tmp/quectel-qemu-e2e.XXXXXX)"
chmod 700 "$WORK"
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${QEMU_E2E_KEEP:-0}" == 1 ]]; then
        echo "[e2e] work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
    for f in mosquitto.log modem.log sub.log standin.log; do
        [[ -s "$WORK/$f" ]] || continue
        echo "----- $f (last 40 lines) -----"
        tail -n 40 "$WORK/$f"
    done
}

# --- 1. PKI -----------------------------------------------------------------------------------

T=$(date +%s%N)
PKI="$WORK/pki"
mkdir -m 700 "$PKI"
(
    cd "$PKI"
    umask 077
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    key ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=QEMU e2e Test Root CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out ca.crt
    leaf() { # name CN extensions
        key "$1.key"
        openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
        printf '%b' "$3" >"$1.ext"
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
            -days 30 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    leaf server localhost \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
    leaf device "$CLIENT_ID" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    leaf observer "$OBSERVER" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    if [[ $OTA == 1 ]]; then
        # The Jobs/streams service's identity, and the code-signing key with its certificate
        # (self-signed, as a private AWS code-signing certificate may be).
        leaf service "$SERVICE" \
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
        key codesign.key
        openssl req -x509 -new -key codesign.key -sha256 -days 30 -subj "/CN=QEMU e2e code signer" \
            -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=codeSigning" \
            -out codesign.crt
    fi
    rm -f ./*.csr ./*.ext ./*.srl
) || die "PKI generation failed"
log "PKI generated in $(ms_since "$T") ms (CA, server localhost/127.0.0.1, device CN=$CLIENT_ID, observer)"

# --- 2. mosquitto like AWS IoT Core ------------------------------------------------------------

cat >"$WORK/acl" <<EOF
# A thing may use its own topics (AWS policy with \${iot:Connection.Thing.ThingName}).
pattern readwrite %u/#
pattern readwrite \$aws/things/%u/#

# The AWS console's MQTT test client.
user $OBSERVER
topic readwrite #
topic readwrite \$aws/#

# The Jobs and streams service (QEMU_E2E_OTA=1).
user $SERVICE
topic readwrite \$aws/#
EOF

port_is_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

T=$(date +%s%N)
PORT=
for attempt in 1 2 3 4 5 6 7 8; do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    port_is_open "$p" && continue
    cat >"$WORK/mosquitto.conf" <<EOF
# Imitates AWS IoT Core: mutual TLS 1.3 only, certificate CN = user name, per-thing ACL, QoS <= 1.
per_listener_settings true
# started as root (CI): keep running as root, do not drop to user mosquitto
user root
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
persistence false
max_keepalive 1200
max_packet_size 131200
max_inflight_messages 100
set_tcp_nodelay true

listener $p 127.0.0.1
protocol mqtt
cafile $PKI/ca.crt
certfile $PKI/server.crt
keyfile $PKI/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
max_qos 1
max_topic_alias 8
allow_anonymous false
acl_file $WORK/acl
EOF
    mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
    MOSQ_PID=$!
    PIDS+=("$MOSQ_PID")
    for _ in $(seq 1 500); do
        kill -0 "$MOSQ_PID" 2>/dev/null || break
        if port_is_open "$p"; then PORT=$p; break; fi
        sleep 0.01
    done
    [[ -n "$PORT" ]] && break
    kill "$MOSQ_PID" 2>/dev/null || true
    wait "$MOSQ_PID" 2>/dev/null || true
    log "mosquitto did not start on port $p (attempt $attempt): $(tail -n 2 "$WORK/mosquitto.log" | tr '\n' ' ')"
done
[[ -n "$PORT" ]] || { show_logs; die "mosquitto did not start"; }
log "mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}') on 127.0.0.1:$PORT in $(ms_since "$T") ms (TLS 1.3, client certificate, CN as user name, ACL %u/#, max_qos 1)"

# --- 3. builds --------------------------------------------------------------------------------

T=$(date +%s%N)
log "building the mock modem ($host_cargo, target dir $HOST_TARGET_DIR)"
(cd "$ROOT" && CARGO_TARGET_DIR="$HOST_TARGET_DIR" $NICE "$host_cargo" build --release -q -p quectel-mock) \
    || die "mock modem build failed"
MOCK="$HOST_TARGET_DIR/release/quectel-mock"
log "mock modem built in $(ms_since "$T") ms"

T=$(date +%s%N)
if [[ $OTA == 1 ]]; then
    # The image: random bytes, 32-64 KiB, signed with the code-signing key.
    OTA_SIZE=$(( 32768 + (RANDOM * 32768 + RANDOM) % 32769 ))
    head -c "$OTA_SIZE" /dev/urandom >"$WORK/image.bin"
    openssl dgst -sha256 -sign "$PKI/codesign.key" -out "$WORK/image.sig" "$WORK/image.bin" \
        || die "signing the image failed"
    OTA_SHA=$(sha256sum "$WORK/image.bin" | awk '{print $1}')
    export QUECTEL_E2E_OTA_SIZE="$OTA_SIZE" QUECTEL_E2E_OTA_SHA256="$OTA_SHA"
    log "OTA image: $OTA_SIZE random bytes, SHA-256 $OTA_SHA, ECDSA P-256 signature $(stat -c %s "$WORK/image.sig") bytes (DER)"
fi
export QUECTEL_E2E_PKI="$PKI" QUECTEL_E2E_ENDPOINT=localhost QUECTEL_E2E_PORT="$PORT" \
    QUECTEL_E2E_CLIENT_ID="$CLIENT_ID" QUECTEL_E2E_TOPIC="$TOPIC"
log "building the firmware (TLS in the $TLS_MODE, ${FW_FEATURES[*]:-no features}, $route route, target dir $FW_TARGET_DIR)"
if [[ $route == rustup ]]; then
    (cd "$FW_DIR" && CARGO_TARGET_DIR="$FW_TARGET_DIR" $NICE cargo build --release -q --target "$TARGET" \
        "${FW_FEATURES[@]}") || die "firmware build failed"
else
    (cd "$FW_DIR" && env -u RUSTUP_TOOLCHAIN RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_DIR="$FW_TARGET_DIR" $NICE /usr/bin/cargo build --release -q --target "$TARGET" \
        -Zbuild-std=core "${FW_FEATURES[@]}") || die "firmware build failed"
fi
ELF="$FW_TARGET_DIR/$TARGET/release/quectel-qemu-mps2"
log "firmware built in $(ms_since "$T") ms: $ELF"
if command -v arm-none-eabi-size >/dev/null 2>&1; then
    arm-none-eabi-size "$ELF" | sed 's/^/    /'
fi

# --- 4. observer, mock modem, QEMU ------------------------------------------------------------

TLS_OBS=(-h 127.0.0.1 -p "$PORT" --cafile "$PKI/ca.crt" --cert "$PKI/observer.crt"
         --key "$PKI/observer.key" --tls-version tlsv1.3 -V mqttv5)

if [[ $OTA == 1 ]]; then
    T=$(date +%s%N)
    python3 -u "$ROOT/scripts/lib/aws_jobs_standin.py" --port "$PORT" --ca "$PKI/ca.crt" \
        --cert "$PKI/service.crt" --key "$PKI/service.key" --thing "$CLIENT_ID" --job "$OTA_JOB" \
        --stream "$OTA_STREAM" --image "$WORK/image.bin" --signature "$WORK/image.sig" \
        >"$WORK/standin.log" 2>&1 &
    STANDIN_PID=$!
    PIDS+=("$STANDIN_PID")
    for _ in $(seq 1 1000); do
        grep -qx READY "$WORK/standin.log" && break
        kill -0 "$STANDIN_PID" 2>/dev/null || { show_logs; die "the Jobs stand-in exited"; }
        sleep 0.01
    done
    grep -qx READY "$WORK/standin.log" || { show_logs; die "the Jobs stand-in did not subscribe"; }
    log "Jobs + streams stand-in subscribed in $(ms_since "$T") ms: job $OTA_JOB, stream $OTA_STREAM"
else
T=$(date +%s%N)
# stdbuf: mosquitto_sub's stdout is a file, which stdio would buffer until exit.
stdbuf -oL -eL mosquitto_sub "${TLS_OBS[@]}" -i e2e-observer -t "$TOPIC" -q 1 -v -d >"$WORK/sub.log" 2>&1 &
SUB_PID=$!
PIDS+=("$SUB_PID")
for _ in $(seq 1 1000); do
    grep -q "received SUBACK" "$WORK/sub.log" && break
    kill -0 "$SUB_PID" 2>/dev/null || { show_logs; die "mosquitto_sub exited"; }
    sleep 0.01
done
grep -q "received SUBACK" "$WORK/sub.log" || { show_logs; die "mosquitto_sub did not subscribe"; }
log "mosquitto_sub subscribed to $TOPIC in $(ms_since "$T") ms"
fi

T=$(date +%s%N)
SOCK="$WORK/modem.sock"
"$MOCK" --model bg96 --search-ms 100 --unix "$SOCK" >"$WORK/modem.log" 2>&1 &
MODEM_PID=$!
PIDS+=("$MODEM_PID")
for _ in $(seq 1 1000); do
    [[ -S "$SOCK" ]] && grep -q "listening on unix:" "$WORK/modem.log" && break
    kill -0 "$MODEM_PID" 2>/dev/null || { show_logs; die "the mock modem exited"; }
    sleep 0.01
done
[[ -S "$SOCK" ]] || { show_logs; die "the mock modem does not listen on $SOCK"; }
log "mock modem (BG96, unpaced) listening on unix:$SOCK in $(ms_since "$T") ms"

T_QEMU=$(date +%s%N)
log "starting QEMU: timeout $QEMU_TIMEOUT qemu-system-arm -M mps2-an386 -nographic -monitor none -semihosting-config enable=on,target=native -serial unix:$SOCK -kernel $ELF"
timeout "$QEMU_TIMEOUT" qemu-system-arm -M mps2-an386 -nographic -monitor none \
    -semihosting-config enable=on,target=native -serial "unix:$SOCK" -kernel "$ELF" \
    > >(tee "$WORK/qemu.log" | sed -u 's/^/    [qemu] /') 2>&1 &
QEMU_PID=$!
PIDS+=("$QEMU_PID")

# --- 5. the cloud: a downlink once the hello arrived ------------------------------------------

if [[ $OTA == 1 ]]; then
    set +e
    wait "$QEMU_PID"
    QEMU_RC=$?
    set -e
    QEMU_MS=$(ms_since "$T_QEMU")
    # The device's last update went through the broker (PUBACK) before it disconnected; the
    # stand-in reads it a moment later.
    want_update="UPDATE $OTA_JOB IN_PROGRESS "
    for _ in $(seq 1 200); do
        grep -F "$want_update" "$WORK/standin.log" | grep -qF '"self_test":"ready"' && break
        sleep 0.025
    done
    complete=$(grep -m1 '^COMPLETE ' "$WORK/standin.log" || true)
    ready=$(grep -F "$want_update" "$WORK/standin.log" | grep -F '"self_test":"ready"' | tail -n1 || true)
    uart=$(grep -o 'UART [0-9]* bytes in, [0-9]* bytes out' "$WORK/qemu.log" | tail -n1 || true)
    log "QEMU exited with $QEMU_RC after $QEMU_MS ms (${uart:-UART bytes not reported})"
    log "stand-in: ${complete:-download NOT complete}; $(grep -c '^GET ' "$WORK/standin.log" || true) GetStream request(s)"
    log "stand-in: last job update: ${ready:-$(grep '^UPDATE ' "$WORK/standin.log" | tail -n1 || echo none)}"
    log "total $(ms_since "$T_START") ms"
    if [[ $QEMU_RC == 0 && -n $complete && -n $ready ]]; then
        log "PASS"
        exit 0
    fi
    [[ $QEMU_RC == 124 ]] && log "QEMU was killed by the ${QEMU_TIMEOUT} s timeout"
    show_logs
    die "QEMU exit status $QEMU_RC, download complete: $([[ -n $complete ]] && echo yes || echo no), IN_PROGRESS self_test ready: $([[ -n $ready ]] && echo yes || echo no)"
fi

saw_hello=0
published=0
while kill -0 "$QEMU_PID" 2>/dev/null; do
    if ((!saw_hello)) && grep -qF "$TOPIC $HELLO" "$WORK/sub.log"; then
        saw_hello=1
        log "mosquitto_sub received '$HELLO' on $TOPIC after $(ms_since "$T_QEMU") ms of QEMU"
    fi
    if ((saw_hello)); then
        if mosquitto_pub "${TLS_OBS[@]}" -i "e2e-cloud-$published" -t "$TOPIC" -q 1 -m "$DOWNLINK" \
            >>"$WORK/pub.log" 2>&1; then
            published=$((published + 1))
            ((published == 1)) && log "downlink published to $TOPIC: $DOWNLINK"
        fi
        # Again in a second, in case the device was not listening yet (until QEMU exits).
        for _ in $(seq 1 20); do
            kill -0 "$QEMU_PID" 2>/dev/null || break
            sleep 0.05
        done
    else
        sleep 0.05
    fi
done
set +e
wait "$QEMU_PID"
QEMU_RC=$?
set -e
QEMU_MS=$(ms_since "$T_QEMU")
grep -qF "$TOPIC $HELLO" "$WORK/sub.log" && saw_hello=1

log "QEMU exited with $QEMU_RC after $QEMU_MS ms; mosquitto_sub saw the hello: $([[ $saw_hello == 1 ]] && echo yes || echo no); downlinks published: $published"
log "total $(ms_since "$T_START") ms"
if [[ $QEMU_RC == 0 && $saw_hello == 1 ]]; then
    log "PASS"
    exit 0
fi
[[ $QEMU_RC == 124 ]] && log "QEMU was killed by the ${QEMU_TIMEOUT} s timeout"
show_logs
die "QEMU exit status $QEMU_RC, hello seen by mosquitto_sub: $saw_hello"
