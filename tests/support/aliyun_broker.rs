//! A local stand-in for Aliyun IoT: the test broker of `broker.rs` in its password mode (TLS,
//! server authentication only, user name and password from a `password_file`, no anonymous
//! clients, its log also on `$SYS/broker/log/#`) plus a responder (an MQTT client of this
//! process, rumqttc, sharing no code with the `quectel` crate) that plays the platform's side of
//! one-product-one-secret (一型一密) dynamic registration and "activates" devices by rewriting
//! their password entries.
//!
//! What the responder does:
//!
//! * Start-up: for every device in [`CloudOptions::devices`] it writes the password entry
//!   `{dn}&{pk}` = the registration sign HMAC(ProductSecret,
//!   "deviceName{dn}productKey{pk}random{random}") (upper-case hex), so that the broker accepts
//!   the device's registration CONNECT; then SIGHUPs the broker and waits until it reloaded.
//!   Says `ready`.
//! * It follows the broker's log through `$SYS/broker/log/#` (`log_dest topic`). When a client
//!   whose id carries `authType=register|regnwl` subscribes to `/ext/register` or
//!   `/ext/regnwl` (Mosquitto only delivers to subscribers: see docs/aliyun.md), it checks the
//!   client id, then publishes the answer with QoS 1 — for `register`
//!   `{"productKey","deviceName","deviceSecret"}` (a fresh DeviceSecret), for `regnwl`
//!   `{"clientId","productKey","deviceName","deviceToken"}` — and says
//!   `registered <dn> <kind>`.
//! * Activation: once the device disconnected (or after 5 s), the entry `{dn}&{pk}` becomes the
//!   one-device-one-secret password HMAC-SHA256(DeviceSecret,
//!   "clientId{pk}.{dn}deviceName{dn}productKey{pk}") (client id `{pk}.{dn}`, no timestamp:
//!   the defaults of `MqttCredentials`) or, for regnwl, the device token. The registration sign
//!   no longer matches, so registering again gets CONNACK 5 (not authorised), as on Aliyun.
//!   Says `activated <dn>`.
//! * [`CloudOptions::flashed`]: one-device-one-secret devices flashed in the factory; their
//!   entries are HMAC-METHOD(SECRET, "clientId{CLIENTID}deviceName{DN}productKey{pk}") at start.
//! * Every message on `/+/+/user/#`, `/sys/#` and `/ota/#` is said as
//!   `message <topic> <hex payload>`; [`AliyunCloud::publish`] sends one as the platform (an OTA
//!   upgrade message, say).
//! * Thing model, as the platform does it: a property or event post
//!   (`/sys/{pk}/{dn}/thing/event/{identifier}/post`) is answered on `…/post_reply` with
//!   `{"code","data":{},"id","message","method","version"}`: code 200 if it carries an `id`, the
//!   matching `method` and a `params` object, 460 (request parameter error) if not; says
//!   `post-reply <dn> <id> <code>`.
//! * When asked ([`AliyunCloud::send_property_set`]): publishes a property set
//!   `{"id","version":"1.0","params",…,"method":"thing.service.property.set"}` to
//!   `/sys/{pk}/{dn}/thing/service/property/set` and waits for `…/set_reply` with the same id,
//!   code 200 and a `data` object; says `property-set-ok <dn>`, or `error property-set …`.
//! * When asked ([`AliyunCloud::send_rrpc`]): publishes the request to
//!   `/sys/{pk}/{dn}/rrpc/request/{messageId}` (a fresh 19-digit id, like the platform's) and
//!   waits for `/sys/{pk}/{dn}/rrpc/response/{messageId}` for the given timeout (the `Timeout` of
//!   Aliyun's `RRpc` API: 1 000 to 8 000 ms). Says `rrpc-ok <dn> <ms>` when the response came in
//!   time with the expected bytes, `rrpc-timeout <dn> <ms>` when none came in time (the
//!   platform's `TIMEOUT`), `error rrpc …` for a wrong response.
//! * Problems are said as `error ...` lines.
//!
//! Signatures are computed here with the `hmac`, `md-5`, `sha1` and `sha2` crates, password
//! entries are written with `mosquitto_passwd` (Debian package `mosquitto`).
//!
//! Used by `tests/aliyun.rs` and, through `#[path]`, by the `aliyun_*` examples; both must
//! also have `broker.rs` as `crate::broker`. Tools that are missing are reported as errors that
//! name the Debian package, not as panics.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};

use crate::broker::{
    Access, Acl, Broker, BrokerOptions, Ctx, Lines, Responder, START_TIMEOUT, hex, json_str,
    random_bytes, sighup,
};

/// What the stand-in serves.
#[derive(Clone, Debug)]
pub struct CloudOptions {
    /// ProductKey.
    pub product_key: String,
    /// ProductSecret.
    pub product_secret: String,
    /// DeviceNames allowed to register.
    pub devices: Vec<String>,
    /// One-device-one-secret devices: (DeviceName, DeviceSecret, client id, sign method); their
    /// password entries are written at start.
    pub flashed: Vec<(String, String, String, String)>,
    /// The `random` the devices will send (the password entry is computed with it).
    pub random: String,
    /// `hmacmd5`, `hmacsha1` or `hmacsha256`.
    pub sign_method: String,
}

/// The running broker and responder (the responder is stopped first on drop).
pub struct AliyunCloud {
    responder: Responder,
    broker: Broker,
    platform: Arc<Platform>,
    /// Ids of the property sets.
    next_id: std::sync::atomic::AtomicU64,
}

fn tool_missing(tool: &str, package: &str) -> Option<String> {
    let found = Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    (!found).then(|| {
        format!(
            "cannot run `{tool}`: install the Debian package `{package}` \
             (apt-get install -y mosquitto mosquitto-clients), or run `cargo xtask test`"
        )
    })
}

/// HMAC-`method` of the concatenated name/value `pairs` with `key`, upper-case hex (Aliyun's
/// signing rule). `None` for an unknown method.
fn sign(method: &str, key: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let content: String = pairs.iter().map(|(n, v)| format!("{n}{v}")).collect();
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &str, content: &str) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes())
            .expect("HMAC takes any key length");
        m.update(content.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
    let bytes = match method {
        "hmacmd5" => mac::<Hmac<md5::Md5>>(key, &content),
        "hmacsha1" => mac::<Hmac<sha1::Sha1>>(key, &content),
        "hmacsha256" => mac::<Hmac<sha2::Sha256>>(key, &content),
        _ => return None,
    };
    Some(hex(&bytes).to_uppercase())
}

/// `{id}|k=v,k=v|` -> (id, {k: v}).
fn parse_client_id(client_id: &str) -> Option<(&str, HashMap<&str, &str>)> {
    if client_id.matches('|').count() != 2 || !client_id.ends_with('|') {
        return None;
    }
    let mut parts = client_id.split('|');
    let base = parts.next()?;
    let params = parts.next()?;
    let mut out = HashMap::new();
    for kv in params.split(',') {
        let (k, v) = kv.split_once('=')?;
        out.insert(k, v);
    }
    Some((base, out))
}

/// The platform's state, shared by the event loop and the answer threads.
struct Platform {
    options: CloudOptions,
    pwfile: PathBuf,
    broker_pid: u32,
    lines: Lines,
    /// Whether the broker logged "Reloading config" since the last [`Platform::reload`].
    reloaded: (Mutex<bool>, Condvar),
    /// Client id -> disconnected (from the broker log).
    disconnected: (Mutex<HashMap<String, bool>>, Condvar),
    /// Topics a waiting exchange (property set, RRPC) expects an answer on.
    awaited: Mutex<HashMap<String, mpsc::Sender<Vec<u8>>>>,
}

impl Platform {
    fn set_password(&self, user: &str, password: &str) -> Result<(), String> {
        let status = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&self.pwfile)
            .args([user, password])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run `mosquitto_passwd` ({e}): install `mosquitto`"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("mosquitto_passwd failed: {status}"))
        }
    }

    fn reload(&self) {
        let (flag, cv) = &self.reloaded;
        *flag.lock().unwrap() = false;
        sighup(self.broker_pid);
        let (guard, _) = cv
            .wait_timeout_while(flag.lock().unwrap(), Duration::from_secs(10), |r| !*r)
            .unwrap();
        if !*guard {
            self.lines.say("error broker did not reload");
        }
    }

    fn on_message(self: &Arc<Self>, ctx: &Ctx<'_>, topic: &str, payload: &[u8]) {
        if topic.starts_with("$SYS/broker/log/") {
            self.on_log(ctx, &String::from_utf8_lossy(payload));
        } else {
            self.lines.say(format!("message {topic} {}", hex(payload)));
            if let Some(tx) = self.awaited.lock().unwrap().remove(topic) {
                let _ = tx.send(payload.to_vec());
            }
            self.on_thing_post(ctx, topic, payload);
        }
    }

    /// Answers `/sys/{pk}/{dn}/thing/event/{identifier}/post` on `…/post_reply`, like the
    /// platform.
    fn on_thing_post(&self, ctx: &Ctx<'_>, topic: &str, payload: &[u8]) {
        let pk = self.options.product_key.as_str();
        let Some((dn, identifier)) = topic
            .strip_prefix("/sys/")
            .and_then(|t| t.strip_prefix(pk))
            .and_then(|t| t.strip_prefix('/'))
            .and_then(|t| t.split_once("/thing/event/"))
            .and_then(|(dn, rest)| Some((dn, rest.strip_suffix("/post")?)))
        else {
            return;
        };
        let request: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let Some(id) = request.get("id").and_then(|v| v.as_str()) else {
            return self
                .lines
                .say(format!("error post without a string id on {topic}"));
        };
        let method = format!("thing.event.{identifier}.post");
        let ok = request.get("method").and_then(|m| m.as_str()) == Some(method.as_str())
            && request.get("params").is_some_and(|p| p.is_object());
        let (code, message) = if ok {
            (200, "success")
        } else {
            (460, "request parameter error")
        };
        let reply = serde_json::json!({
            "code": code,
            "data": {},
            "id": id,
            "message": message,
            "method": method,
            "version": "1.0",
        });
        let reply_topic = format!("{topic}_reply");
        match ctx.client.try_publish(
            reply_topic,
            rumqttc::QoS::AtMostOnce,
            false,
            reply.to_string(),
        ) {
            Ok(()) => self.lines.say(format!("post-reply {dn} {id} {code}")),
            Err(e) => self.lines.say(format!("error post_reply publish: {e}")),
        }
    }

    /// Registers `topic` as awaited, publishes `payload` to `request_topic`, and waits up to
    /// `timeout` for the answer: (answer, time from the publish).
    fn exchange(
        &self,
        client: &rumqttc::Client,
        request_topic: &str,
        payload: Vec<u8>,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<(Vec<u8>, Duration)>, String> {
        let (tx, rx) = mpsc::channel();
        self.awaited.lock().unwrap().insert(topic.to_string(), tx);
        let start = Instant::now();
        if let Err(e) = client.publish(request_topic, rumqttc::QoS::AtLeastOnce, false, payload) {
            self.awaited.lock().unwrap().remove(topic);
            return Err(format!("publish: {e}"));
        }
        match rx.recv_timeout(timeout) {
            Ok(answer) => Ok(Some((answer, start.elapsed()))),
            Err(_) => {
                self.awaited.lock().unwrap().remove(topic);
                Ok(None)
            }
        }
    }

    fn property_set(&self, client: &rumqttc::Client, dn: &str, id: u64, params: serde_json::Value) {
        let pk = self.options.product_key.as_str();
        let topic = format!("/sys/{pk}/{dn}/thing/service/property/set");
        let request = serde_json::json!({
            "id": id.to_string(),
            "version": "1.0",
            "params": params,
            "method": "thing.service.property.set",
        });
        let reply_topic = format!("{topic}_reply");
        let answer = match self.exchange(
            client,
            &topic,
            request.to_string().into_bytes(),
            &reply_topic,
            Duration::from_secs(10),
        ) {
            Err(e) => return self.lines.say(format!("error property-set {dn}: {e}")),
            Ok(None) => return self.lines.say(format!("error property-set {dn}: no reply")),
            Ok(Some((answer, _))) => answer,
        };
        let reply: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        let want_id = id.to_string();
        if reply.get("id").and_then(|v| v.as_str()) != Some(want_id.as_str()) {
            return self.lines.say(format!(
                "error property-set {dn}: reply id is not {want_id}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        if reply.get("code").and_then(|v| v.as_u64()) != Some(200)
            || !reply.get("data").is_some_and(|d| d.is_object())
        {
            return self.lines.say(format!(
                "error property-set {dn}: reply is not code 200 with a data object: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        self.lines.say(format!("property-set-ok {dn}"));
    }

    fn rrpc(
        &self,
        client: &rumqttc::Client,
        dn: &str,
        request: Vec<u8>,
        expect: Option<Vec<u8>>,
        timeout: Duration,
    ) {
        let pk = self.options.product_key.as_str();
        // The platform's message ids are 64-bit decimal numbers (19 digits).
        let message_id = 1_000_000_000_000_000_000
            + u64::from_le_bytes(random_bytes(8).try_into().unwrap()) % 8_000_000_000_000_000_000;
        let topic = format!("/sys/{pk}/{dn}/rrpc/request/{message_id}");
        let response_topic = format!("/sys/{pk}/{dn}/rrpc/response/{message_id}");
        match self.exchange(client, &topic, request, &response_topic, timeout) {
            Err(e) => self.lines.say(format!("error rrpc {dn}: {e}")),
            Ok(None) => self
                .lines
                .say(format!("rrpc-timeout {dn} {}", timeout.as_millis())),
            Ok(Some((answer, took))) => {
                if expect.as_ref().is_some_and(|e| *e != answer) {
                    self.lines.say(format!(
                        "error rrpc {dn}: unexpected response {:?}",
                        String::from_utf8_lossy(&answer)
                    ));
                } else {
                    self.lines.say(format!("rrpc-ok {dn} {}", took.as_millis()));
                }
            }
        }
    }

    fn on_log(self: &Arc<Self>, ctx: &Ctx<'_>, line: &str) {
        // "<timestamp>: <text>"
        let text = line.split_once(": ").map_or(line, |(_, t)| t);
        if text.starts_with("Reloading config") {
            let (flag, cv) = &self.reloaded;
            *flag.lock().unwrap() = true;
            cv.notify_all();
            return;
        }
        if let Some(rest) = text.strip_prefix("Client ")
            && let Some((cid, _)) = rest.split_once(" disconnected")
        {
            let (map, cv) = &self.disconnected;
            map.lock().unwrap().insert(cid.to_string(), true);
            cv.notify_all();
            return;
        }
        // log_type subscribe: "<client id> <qos> <topic>"
        for topic in ["/ext/register", "/ext/regnwl"] {
            if let Some(head) = text.strip_suffix(topic).and_then(|h| h.strip_suffix(' '))
                && let Some((client_id, qos)) = head.rsplit_once(' ')
                && !qos.is_empty()
                && qos.chars().all(|c| c.is_ascii_digit())
            {
                let (me, client_id) = (self.clone(), client_id.to_string());
                let client = ctx.client.clone();
                std::thread::spawn(move || me.answer(&client, &client_id, topic));
            }
        }
    }

    fn answer(&self, client: &rumqttc::Client, client_id: &str, topic: &str) {
        let o = &self.options;
        let Some((_, params)) = parse_client_id(client_id) else {
            return self.lines.say("error unparsable client id");
        };
        let kind = params.get("authType").copied().unwrap_or("");
        if !["register", "regnwl"].contains(&kind) || format!("/ext/{kind}") != topic {
            return self.lines.say(format!("error unexpected authType {kind}"));
        }
        if !matches!(params.get("securemode").copied(), Some("2" | "-2"))
            || params.get("random").copied() != Some(o.random.as_str())
        {
            return self.lines.say("error unexpected securemode/random");
        }
        if params.get("signmethod").copied() != Some(o.sign_method.as_str()) {
            return self.lines.say("error unexpected signmethod");
        }
        // The user name is "{dn}&{pk}"; the client id base is "{dn}.{pk}" by default, but the
        // device name is what the broker authenticated: find it among ours.
        let Some(dn) = o.devices.iter().find(|d| {
            client_id.starts_with(&format!("{d}.")) || client_id.starts_with(&format!("{d}|"))
        }) else {
            return self.lines.say("error unknown device in client id");
        };
        self.disconnected
            .0
            .lock()
            .unwrap()
            .insert(client_id.to_string(), false);
        let pk = o.product_key.as_str();
        let (body, password) = if kind == "register" {
            let secret = hex(&random_bytes(16));
            let cid = format!("{pk}.{dn}");
            let body = format!(
                "{{\"productKey\":{},\"deviceName\":{},\"deviceSecret\":{}}}",
                json_str(pk),
                json_str(dn),
                json_str(&secret)
            );
            let password = sign(
                "hmacsha256",
                &secret,
                &[("clientId", &cid), ("deviceName", dn), ("productKey", pk)],
            );
            (body, password.expect("hmacsha256 is known"))
        } else {
            let token = hex(&random_bytes(24));
            let body = format!(
                "{{\"clientId\":{},\"productKey\":{},\"deviceName\":{},\"deviceToken\":{}}}",
                json_str(&format!("nwl{}", hex(&random_bytes(6)))),
                json_str(pk),
                json_str(dn),
                json_str(&token)
            );
            (body, token)
        };
        if let Err(e) = client.publish(topic, rumqttc::QoS::AtLeastOnce, false, body) {
            return self.lines.say(format!("error publish: {e}"));
        }
        self.lines.say(format!("registered {dn} {kind}"));
        {
            let (map, cv) = &self.disconnected;
            let _ = cv
                .wait_timeout_while(map.lock().unwrap(), Duration::from_secs(5), |m| {
                    m.get(client_id) != Some(&true)
                })
                .unwrap();
        }
        if let Err(e) = self.set_password(&format!("{dn}&{pk}"), &password) {
            return self.lines.say(format!("error {e}"));
        }
        self.reload();
        self.lines.say(format!("activated {dn}"));
    }
}

impl AliyunCloud {
    /// Starts the broker on a free port of 127.0.0.1 and the responder; returns once the
    /// responder has written the registration password entries and the broker reloaded them.
    pub fn start(o: &CloudOptions) -> Result<AliyunCloud, String> {
        for (tool, package) in [
            ("mosquitto", "mosquitto"),
            ("mosquitto_passwd", "mosquitto"),
        ] {
            if let Some(e) = tool_missing(tool, package) {
                return Err(e);
            }
        }
        let pk = o.product_key.as_str();
        // Check the options before anything starts.
        let registration = o
            .devices
            .iter()
            .map(|dn| {
                let pw = sign(
                    &o.sign_method,
                    &o.product_secret,
                    &[
                        ("deviceName", dn),
                        ("productKey", pk),
                        ("random", &o.random),
                    ],
                )
                .ok_or_else(|| format!("unknown sign method {}", o.sign_method))?;
                Ok((format!("{dn}&{pk}"), pw))
            })
            .chain(o.flashed.iter().map(|(dn, secret, cid, method)| {
                let pw = sign(
                    method,
                    secret,
                    &[("clientId", cid), ("deviceName", dn), ("productKey", pk)],
                )
                .ok_or_else(|| format!("unknown sign method {method}"))?;
                Ok((format!("{dn}&{pk}"), pw))
            }))
            .collect::<Result<Vec<_>, String>>()?;

        let cloud_password = format!("cloud-{}", hex(&random_bytes(8)));
        // What a public instance allows: TLS 1.2 at most, and each device only its own topics
        // (the platform's side, `aliyun-cloud`, everything). `$SYS` stays readable for the
        // log the responder follows.
        let mut acl =
            Acl::empty()
                .full_access("aliyun-cloud")
                .grant("aliyun-cloud", Access::Read, "$SYS/#");
        for dn in o.devices.iter().chain(o.flashed.iter().map(|f| &f.0)) {
            acl = acl.aliyun_device(pk, dn);
        }
        let broker = Broker::start(BrokerOptions {
            passwords: Some(vec![("aliyun-cloud".into(), cloud_password.clone())]),
            log_topic: true,
            tls_max_1_2: true,
            password_acl: true,
            acl,
            ..BrokerOptions::default()
        });
        let lines = Lines::default();
        let platform = Arc::new(Platform {
            options: o.clone(),
            pwfile: broker.passwords_path(),
            broker_pid: broker.pid().ok_or("the broker is not running")?,
            lines: lines.clone(),
            reloaded: (Mutex::new(false), Condvar::new()),
            disconnected: (Mutex::new(HashMap::new()), Condvar::new()),
            awaited: Mutex::new(HashMap::new()),
        });
        let topics = [
            ("$SYS/broker/log/#", rumqttc::QoS::AtMostOnce),
            ("/+/+/user/#", rumqttc::QoS::AtLeastOnce),
            ("/sys/#", rumqttc::QoS::AtLeastOnce),
            ("/ota/#", rumqttc::QoS::AtLeastOnce),
        ]
        .into_iter()
        .map(|(t, q)| (t.to_string(), q))
        .collect();
        let p = platform.clone();
        let responder = Responder::start(
            "aliyun",
            broker.port(),
            format!("aliyun-cloud-{}", hex(&random_bytes(4))),
            Responder::tls(&broker.pki().ca_pem, None),
            Some(("aliyun-cloud".into(), cloud_password)),
            topics,
            lines.clone(),
            None,
            move |ctx, msg| p.on_message(ctx, &msg.topic, &msg.payload),
            START_TIMEOUT,
        )?;
        for (user, password) in &registration {
            platform.set_password(user, password)?;
        }
        platform.reload();
        lines.say("ready");
        Ok(AliyunCloud {
            responder,
            broker,
            platform,
            next_id: std::sync::atomic::AtomicU64::new(1000),
        })
    }

    /// Sends a property set with `params` (a JSON object) to device `dn` and checks its reply,
    /// on a thread: returns at once; the outcome is said (`property-set-ok <dn>` or
    /// `error property-set …`).
    pub fn send_property_set(&self, dn: &str, params: serde_json::Value) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (p, client, dn) = (
            self.platform.clone(),
            self.responder.client().clone(),
            dn.to_string(),
        );
        std::thread::spawn(move || p.property_set(&client, &dn, id, params));
    }

    /// Sends an RRPC request to device `dn` and waits up to `timeout` (the `RRpc` API's
    /// `Timeout`, 1 000 to 8 000 ms on Aliyun) for its response, on a thread: returns at once;
    /// the outcome is said (`rrpc-ok <dn> <ms>`, `rrpc-timeout <dn> <ms>` or `error rrpc …`).
    /// With `expect`, the response must be these bytes.
    pub fn send_rrpc(&self, dn: &str, request: &[u8], expect: Option<&[u8]>, timeout: Duration) {
        let (p, client, dn) = (
            self.platform.clone(),
            self.responder.client().clone(),
            dn.to_string(),
        );
        let (request, expect) = (request.to_vec(), expect.map(<[u8]>::to_vec));
        std::thread::spawn(move || p.rrpc(&client, &dn, request, expect, timeout));
    }

    /// Publishes `payload` on `topic` with QoS 1 as the platform (e.g. an OTA upgrade message
    /// on `/ota/device/upgrade/{pk}/{dn}`); says `published <topic>`.
    pub fn publish(&self, topic: &str, payload: &[u8]) {
        match self.responder.client().publish(
            topic,
            rumqttc::QoS::AtLeastOnce,
            false,
            payload.to_vec(),
        ) {
            Ok(()) => self.platform.lines.say(format!("published {topic}")),
            Err(e) => self
                .platform
                .lines
                .say(format!("error publish {topic}: {e}")),
        }
    }

    /// The broker's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.broker.port()
    }

    /// The CA certificate (PEM) the devices must trust.
    pub fn ca_pem(&self) -> String {
        self.broker.pki().ca_pem.clone()
    }

    /// Everything the responder said so far.
    pub fn lines(&self) -> Vec<String> {
        self.responder.lines()
    }

    /// How many lines start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// Waits until a line satisfies `pred`; false on timeout.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        self.responder.wait_line(pred, timeout).is_some()
    }

    /// Waits for a message on `topic` (said by the responder) and returns its payload.
    pub fn wait_message(&self, topic: &str, timeout: Duration) -> Option<Vec<u8>> {
        let prefix = format!("message {topic} ");
        let line = self
            .responder
            .wait_line(|l| l.starts_with(&prefix), timeout)?;
        let hex = &line[prefix.len()..];
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// The broker log.
    pub fn broker_log(&self) -> String {
        self.broker.log()
    }
}
