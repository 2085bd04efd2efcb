//! A stand-in for AWS IoT Jobs and MQTT-based file delivery (streams), in the style of
//! `FleetResponder`: an MQTT client of the test process (rumqttc, a thread) connected to the
//! loopback mosquitto with a service certificate; nothing of the `quectel` crate is involved
//! (its CBOR is read and written with minicbor, its JSON with serde_json).
//!
//! It serves, for any thing:
//! - `$aws/things/<thing>/jobs/$next/get` → `.../$next/get/accepted` with the first job that is
//!   `QUEUED` or `IN_PROGRESS` (`execution` with `jobId`, `status`, `statusDetails`,
//!   `jobDocument`), or without `execution`;
//! - `$aws/things/<thing>/jobs/<jobId>/update` → records the status and `statusDetails` (they
//!   show in the next `$next/get`; a terminal status ends the job);
//! - `$aws/things/<thing>/streams/<stream>/get/cbor` → one `.../data/cbor` message per wanted
//!   block (`f`, `i`, `l`, `p`: CBOR, `p` a byte string), from `o` and the bitmap `b` (bit *i*
//!   = block `o + i`, byte 0 = bits 7…0) capped at `n`; an unknown stream or file →
//!   `.../rejected/cbor` `{"o":"ResourceNotFound",…}`;
//! - the same in JSON on `.../get/json`: the request `{"c","f","l","o","b","n"}` with `b` a hex
//!   string (`"0x130080"`: the same bytes and bit order as the CBOR byte string), data
//!   `{"c","f","l","i","p"}` on `.../data/json` with `p` in base64, errors on
//!   `.../rejected/json`.
//!
//! Faults: blocks sent once malformed or short, requests ignored, and a "link cut" after a
//! number of blocks (the rest of that request is not sent and [`JobsStandIn::cut_requested`]
//! turns true, for the test to drop the device's socket or reset it).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::support::broker::{Broker, ClientId, Lines, Responder, START_TIMEOUT};

static IDS: AtomicUsize = AtomicUsize::new(0);

/// One job.
#[derive(Clone, Debug)]
pub struct JobDef {
    pub id: String,
    pub document: serde_json::Value,
    pub status: String,
    pub details: serde_json::Value,
}

/// What the stand-in saw and how it misbehaves.
#[derive(Default)]
pub struct JobsState {
    pub jobs: Vec<JobDef>,
    /// Stream name -> (file id, bytes).
    pub streams: HashMap<String, Vec<(u8, Vec<u8>)>>,
    /// Every update: (job id, status, statusDetails).
    pub updates: Vec<(String, String, serde_json::Value)>,
    /// Sends per block index.
    pub sends: HashMap<u32, u32>,
    /// Payload bytes sent in data messages.
    pub payload_bytes: u64,
    /// Blocks sent (all streams).
    pub blocks_sent: u32,
    /// GetStream requests received (decoded): (o, n, bitmap, l).
    pub requests: Vec<(u32, u32, Vec<u8>, u32)>,
    /// The format of each request ("cbor" or "json"), in order.
    pub request_formats: Vec<String>,
    /// Blocks to send once malformed (the CBOR map or the JSON text cut short).
    pub corrupt_once: HashSet<u32>,
    /// Blocks to send once one byte short.
    pub short_once: HashSet<u32>,
    /// JSON: blocks to send once with a character of the base64 text that is not base64.
    pub bad_base64_once: HashSet<u32>,
    /// Requests to ignore (answered with nothing).
    pub ignore_requests: u32,
    /// After this many blocks sent in total, stop serving the current request and raise
    /// `cut`.
    pub cut_after: Option<u32>,
    pub cut: bool,
    /// The code-signing certificate the test made (handed to the device by the test).
    pub cert_pem: String,
}

pub struct JobsStandIn {
    responder: Responder,
    pub state: Arc<Mutex<JobsState>>,
    _sender: thread::JoinHandle<()>,
}

/// A data block as AWS sends it: with the request's client token echoed in `c`.
fn cbor_block(token: &str, file_id: u8, index: u32, data: &[u8]) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.map(5)
        .unwrap()
        .str("c")
        .unwrap()
        .str(token)
        .unwrap()
        .str("f")
        .unwrap()
        .u8(file_id)
        .unwrap()
        .str("i")
        .unwrap()
        .u32(index)
        .unwrap()
        .str("l")
        .unwrap()
        .u32(data.len() as u32)
        .unwrap()
        .str("p")
        .unwrap()
        .bytes(data)
        .unwrap();
    e.into_writer()
}

fn json_block(token: &str, file_id: u8, index: u32, data: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "c": token, "f": file_id, "l": data.len(), "i": index, "p": base64(data),
    }))
    .unwrap()
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            s.push(if k <= c.len() {
                T[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

/// A JSON GetStream request; `b` is `"0x"` and two hex digits per bitmap byte, byte 0 first.
fn decode_request_json(p: &[u8]) -> Option<Request> {
    let v: serde_json::Value = serde_json::from_slice(p).ok()?;
    let c = v["c"].as_str().unwrap_or("").to_string();
    let f = u8::try_from(v["f"].as_u64()?).ok()?;
    let l = u32::try_from(v["l"].as_u64()?).ok()?;
    let o = v["o"].as_u64().unwrap_or(0) as u32;
    let b = match v["b"].as_str() {
        None => None,
        Some(h) => {
            let h = h.strip_prefix("0x")?;
            if h.len() % 2 != 0 {
                return None;
            }
            let bytes: Option<Vec<u8>> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
                .collect();
            Some(bytes?)
        }
    };
    let n = v["n"].as_u64().map(|n| n as u32);
    Some((c, f, l, o, b, n))
}

/// (c, f, l, o, b, n) of a GetStream request.
type Request = (String, u8, u32, u32, Option<Vec<u8>>, Option<u32>);

fn decode_request(p: &[u8]) -> Option<Request> {
    let mut d = minicbor::Decoder::new(p);
    let n = d.map().ok()??;
    let (mut c, mut f, mut l, mut o, mut b, mut nn) = (String::new(), None, None, 0, None, None);
    for _ in 0..n {
        match d.str().ok()? {
            "c" => c = d.str().ok()?.to_string(),
            "f" => f = Some(d.u8().ok()?),
            "l" => l = Some(d.u32().ok()?),
            "o" => o = d.u32().ok()?,
            "b" => b = Some(d.bytes().ok()?.to_vec()),
            "n" => nn = Some(d.u32().ok()?),
            _ => d.skip().ok()?,
        }
    }
    Some((c, f?, l?, o, b, nn))
}

fn rejected(code: &str, token: &str) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.map(3)
        .unwrap()
        .str("o")
        .unwrap()
        .str(code)
        .unwrap()
        .str("m")
        .unwrap()
        .str("not found")
        .unwrap()
        .str("c")
        .unwrap()
        .str(token)
        .unwrap();
    e.into_writer()
}

impl JobsStandIn {
    /// Starts the stand-in with `service` (an identity the broker's ACL gives full access).
    pub fn start(broker: &Broker, service: &ClientId) -> JobsStandIn {
        let state = Arc::new(Mutex::new(JobsState::default()));
        let (tx, rx) = mpsc::channel::<(String, Vec<u8>)>();
        let topics = [
            "$aws/things/+/jobs/$next/get",
            "$aws/things/+/jobs/+/update",
            "$aws/things/+/streams/+/get/cbor",
            "$aws/things/+/streams/+/get/json",
        ]
        .into_iter()
        .map(|t| (t.to_string(), rumqttc::QoS::AtLeastOnce))
        .collect();
        let st = state.clone();
        let responder = Responder::start(
            "aws-jobs",
            broker.port(),
            format!("aws-jobs-standin-{}", IDS.fetch_add(1, Ordering::Relaxed)),
            Responder::tls(&broker.pki().ca_pem, Some(service)),
            None,
            topics,
            Lines::default(),
            Some("READY"),
            move |ctx, p| handle(&st, &tx, ctx, &p.topic, &p.payload),
            START_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("jobs stand-in: {e}"));
        // Data goes out from its own thread: the handler runs on the event loop's thread, and a
        // blocking publish there could wait for itself.
        let client = responder.client().clone();
        let sender = thread::spawn(move || {
            while let Ok((topic, payload)) = rx.recv() {
                if client
                    .publish(topic, rumqttc::QoS::AtMostOnce, false, payload)
                    .is_err()
                {
                    break;
                }
            }
        });
        JobsStandIn {
            responder,
            state,
            _sender: sender,
        }
    }

    /// Adds an OTA job for `stream` (file 0: `image`) with signature `sig_b64`.
    pub fn add_ota_job(&self, job_id: &str, stream: &str, image: &[u8], sig_b64: &str) {
        let doc = serde_json::json!({
            "afr_ota": {
                "protocols": ["MQTT"],
                "streamname": stream,
                "files": [{
                    "filepath": "firmware.bin",
                    "filesize": image.len(),
                    "fileid": 0,
                    "certfile": "codesign.crt",
                    "sig-sha256-ecdsa": sig_b64,
                }]
            }
        });
        let mut s = self.state.lock().unwrap();
        s.streams
            .insert(stream.to_string(), vec![(0, image.to_vec())]);
        s.jobs.push(JobDef {
            id: job_id.to_string(),
            document: doc,
            status: "QUEUED".into(),
            details: serde_json::json!({}),
        });
    }

    /// Adds a job with any document.
    pub fn add_job(&self, job_id: &str, document: serde_json::Value) {
        self.state.lock().unwrap().jobs.push(JobDef {
            id: job_id.to_string(),
            document,
            status: "QUEUED".into(),
            details: serde_json::json!({}),
        });
    }

    /// The job's status now.
    pub fn status(&self, job_id: &str) -> String {
        let s = self.state.lock().unwrap();
        s.jobs
            .iter()
            .find(|j| j.id == job_id)
            .map(|j| j.status.clone())
            .unwrap_or_default()
    }

    /// The job's status once it is `want`, or whatever it is after 10 s. (The broker
    /// acknowledges the device's update before the stand-in has read it.)
    pub fn wait_status(&self, job_id: &str, want: &str) -> String {
        wait_until(Duration::from_secs(10), || self.status(job_id) == want);
        self.status(job_id)
    }

    /// Waits (at most 10 s) until an update for `job_id` satisfies `pred`; all updates then.
    pub fn wait_update(
        &self,
        job_id: &str,
        pred: impl Fn(&str, &serde_json::Value) -> bool,
    ) -> Vec<(String, serde_json::Value)> {
        wait_until(Duration::from_secs(10), || {
            self.updates(job_id).iter().any(|(s, d)| pred(s, d))
        });
        self.updates(job_id)
    }

    /// Every update received for `job_id`: (status, statusDetails).
    pub fn updates(&self, job_id: &str) -> Vec<(String, serde_json::Value)> {
        let s = self.state.lock().unwrap();
        s.updates
            .iter()
            .filter(|u| u.0 == job_id)
            .map(|u| (u.1.clone(), u.2.clone()))
            .collect()
    }

    /// Payload bytes sent more than once (over all blocks: (sends − 1) × length).
    pub fn resent_bytes(&self, block: usize, size: usize) -> u64 {
        let s = self.state.lock().unwrap();
        s.sends
            .iter()
            .map(|(&i, &n)| {
                let len = (size - i as usize * block).min(block) as u64;
                u64::from(n.saturating_sub(1)) * len
            })
            .sum()
    }

    pub fn cut_requested(&self) -> bool {
        self.state.lock().unwrap().cut
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut JobsState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn diagnostics(&self) -> String {
        self.responder.diagnostics()
    }
}

fn handle(
    state: &Mutex<JobsState>,
    tx: &mpsc::Sender<(String, Vec<u8>)>,
    ctx: &crate::support::broker::Ctx<'_>,
    topic: &str,
    payload: &[u8],
) {
    let parts: Vec<&str> = topic.split('/').collect();
    // $aws / things / <thing> / jobs|streams / ...
    if parts.len() < 5 || parts[0] != "$aws" || parts[1] != "things" {
        return;
    }
    let thing = parts[2];
    let mut s = state.lock().unwrap();
    match (parts[3], &parts[4..]) {
        ("jobs", ["$next", "get"]) => {
            let req: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
            let token = req["clientToken"].clone();
            let mut answer = serde_json::json!({"clientToken": token, "timestamp": 1});
            if let Some(j) = s
                .jobs
                .iter()
                .find(|j| j.status == "QUEUED" || j.status == "IN_PROGRESS")
            {
                answer["execution"] = serde_json::json!({
                    "jobId": j.id,
                    "thingName": thing,
                    "status": j.status,
                    "statusDetails": j.details,
                    "jobDocument": j.document,
                    "queuedAt": 1,
                    "versionNumber": 1,
                    "executionNumber": 1,
                });
            }
            ctx.lines
                .say(format!("NEXT {}", answer["execution"]["jobId"]));
            let _ = tx.send((
                format!("$aws/things/{thing}/jobs/$next/get/accepted"),
                serde_json::to_vec(&answer).unwrap(),
            ));
        }
        ("jobs", [job, "update"]) => {
            let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
            let status = v["status"].as_str().unwrap_or("").to_string();
            let details = v["statusDetails"].clone();
            ctx.lines.say(format!("UPDATE {job} {status} {details}"));
            s.updates
                .push((job.to_string(), status.clone(), details.clone()));
            if let Some(j) = s.jobs.iter_mut().find(|j| j.id == *job) {
                j.status = status;
                if details.is_object() {
                    j.details = details;
                }
            }
        }
        ("streams", [stream, "get", fmt @ ("cbor" | "json")]) => {
            let json = *fmt == "json";
            let decoded = if json {
                decode_request_json(payload)
            } else {
                decode_request(payload)
            };
            let Some((token, f, l, o, b, n)) = decoded else {
                ctx.diag.say("malformed GetStream request");
                return;
            };
            s.requests
                .push((o, n.unwrap_or(0), b.clone().unwrap_or_default(), l));
            s.request_formats.push(fmt.to_string());
            if s.ignore_requests > 0 {
                s.ignore_requests -= 1;
                return;
            }
            let data_topic = format!("$aws/things/{thing}/streams/{stream}/data/{fmt}");
            let Some(file) = s
                .streams
                .get(*stream)
                .and_then(|files| files.iter().find(|(id, _)| *id == f))
                .map(|(_, bytes)| bytes.clone())
            else {
                let body = if json {
                    serde_json::to_vec(&serde_json::json!({
                        "o": "ResourceNotFound", "m": "not found", "c": token,
                    }))
                    .unwrap()
                } else {
                    rejected("ResourceNotFound", &token)
                };
                let _ = tx.send((
                    format!("$aws/things/{thing}/streams/{stream}/rejected/{fmt}"),
                    body,
                ));
                return;
            };
            let blocks = file.len().div_ceil(l as usize) as u32;
            let cap = n.unwrap_or(131_072 / l);
            let wanted: Vec<u32> = match &b {
                Some(bitmap) => (0..bitmap.len() as u32 * 8)
                    .filter(|i| bitmap[(i / 8) as usize] >> (i % 8) & 1 == 1)
                    .map(|i| o + i)
                    .filter(|&i| i < blocks)
                    .take(cap as usize)
                    .collect(),
                None => (o..blocks).take(cap as usize).collect(),
            };
            for i in wanted {
                if let Some(limit) = s.cut_after
                    && s.blocks_sent >= limit
                {
                    s.cut_after = None;
                    s.cut = true;
                    return;
                }
                let start = i as usize * l as usize;
                let data = &file[start..(start + l as usize).min(file.len())];
                let encode = |d: &[u8]| {
                    if json {
                        json_block(&token, f, i, d)
                    } else {
                        cbor_block(&token, f, i, d)
                    }
                };
                let msg = if s.corrupt_once.remove(&i) {
                    let full = encode(data);
                    full[..full.len() / 2].to_vec()
                } else if json && s.bad_base64_once.remove(&i) {
                    let text = String::from_utf8(encode(data)).unwrap();
                    let at = text.find("\"p\":\"").unwrap() + 10;
                    let mut bytes = text.into_bytes();
                    bytes[at] = b'!';
                    bytes
                } else if s.short_once.remove(&i) {
                    encode(&data[..data.len() - 1])
                } else {
                    encode(data)
                };
                *s.sends.entry(i).or_default() += 1;
                s.payload_bytes += data.len() as u64;
                s.blocks_sent += 1;
                let _ = tx.send((data_topic.clone(), msg));
            }
        }
        _ => {}
    }
}

/// Waits until `pred` holds (at most `timeout`).
pub fn wait_until(timeout: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if pred() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    pred()
}
