//! The Alink thing model (物模型) and RRPC of Aliyun IoT, as a dispatcher with no I/O.
//!
//! [`Thing`] knows a device's system topics and speaks Alink JSON:
//!
//! - **Uplink** (device → cloud): [`Thing::property_post`] and [`Thing::event_post`] write
//!   `{"id":"<n>","version":"1.0","params":…,"method":"thing.event.….post"}` into a buffer of
//!   the caller and return the topic and payload to publish. Each post gets a fresh id, kept in a
//!   table of `N` outstanding posts until the platform's `…/post_reply` arrives.
//! - **Downlink** (cloud → device): [`Thing::handle`] takes every received `(topic, payload)` and
//!   says what it is ([`Inbound`]): the reply to a post (matched with its post by id), a property
//!   set, a service call (asynchronous, or synchronous over RRPC), an RRPC request (system or
//!   custom topic), a broadcast or a custom (`/user/`) message. Requests
//!   carry a [`ReplyTo`] ticket (owned: the answer may come later, from another task);
//!   [`Thing::reply`] builds the `…_reply` message, [`Thing::rrpc_response`] the RRPC response
//!   topic.
//!
//! Nothing here touches the connection: publish what these functions return through
//! [`MqttConnection::publish`](crate::mqtt::MqttConnection::publish) or, from inside the message
//! callback of [`MqttConnection::serve`](crate::mqtt::MqttConnection::serve), through the
//! [`Outbox`](crate::mqtt::Outbox). All methods take `&self` (the table sits behind a
//! critical-section mutex), so one `Thing` can be shared by the task that posts and the callback
//! that receives.
//!
//! ```rust
//! use quectel::cloud::aliyun::{Device, thing::{Inbound, Thing, ThingError}};
//!
//! let thing: Thing<'_, 4> = Thing::new(Device::new("a1X2bEnP82z", "example1")?);
//! // Report a property: the caller publishes `post.topic()` / `post.payload()`.
//! let mut buf = [0u8; 256];
//! let post = thing.property_post_json(br#"{"Power":"on"}"#, &mut buf)?;
//! assert_eq!(post.topic(), "/sys/a1X2bEnP82z/example1/thing/event/property/post");
//! assert_eq!(
//!     post.payload(),
//!     br#"{"id":"1","version":"1.0","params":{"Power":"on"},"method":"thing.event.property.post"}"#
//! );
//! // The platform's answer, matched with the post.
//! let reply = thing.handle(
//!     "/sys/a1X2bEnP82z/example1/thing/event/property/post_reply",
//!     br#"{"id":"1","code":200,"data":{},"message":"success","method":"thing.event.property.post","version":"1.0"}"#,
//! )?;
//! assert!(matches!(reply, Some(Inbound::PostReply(r)) if r.id == 1));
//! // A property set from the cloud, and its reply.
//! let set = thing.handle(
//!     "/sys/a1X2bEnP82z/example1/thing/service/property/set",
//!     br#"{"id":"77","version":"1.0","params":{"Power":"off"},"method":"thing.service.property.set"}"#,
//! )?;
//! let Some(Inbound::PropertySet(request)) = set else { unreachable!() };
//! assert_eq!(request.params, br#"{"Power":"off"}"#);
//! let answer = thing.reply(&request.reply_to, 200, None, &mut buf)?;
//! assert_eq!(answer.topic(), "/sys/a1X2bEnP82z/example1/thing/service/property/set_reply");
//! assert_eq!(answer.payload(), br#"{"id":"77","code":200,"data":{}}"#);
//! # Ok::<(), ThingError>(())
//! ```
//!
//! RRPC: the platform's `RRpc` call waits at most its `Timeout` (1 000 to 8 000 ms, Aliyun's
//! RRpc API) for the device's response, and Aliyun's device guide says to respond within 8 s;
//! a later response is dropped by the platform, which has already failed the call with
//! `TIMEOUT`. [`Thing::handle`] records when the request arrived, and [`Thing::rrpc_response`]
//! refuses to build a response after [`Thing::rrpc_deadline`] (default [`RRPC_DEADLINE`], 8 s)
//! with [`ThingError::RrpcLate`], so the application learns that the caller already gave up.

use core::cell::RefCell;
use core::fmt::{self, Write as _};

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use super::{Device, Topic};
use crate::cloud::CloudError;

/// The longest the platform waits for an RRPC response: the `Timeout` of Aliyun's `RRpc` API is
/// 1 000 to 8 000 ms, and the device guide says to respond within 8 s.
pub const RRPC_DEADLINE: Duration = Duration::from_secs(8);

/// Capacity of a request id received from the cloud (Alink ids are decimal numbers up to
/// 4 294 967 295; a longer id is refused as [`ThingError::Malformed`]).
pub const REQUEST_ID_MAX: usize = 32;

/// Capacity of an RRPC message id (the platform's ids are 64-bit decimal numbers, 19 digits).
pub const MESSAGE_ID_MAX: usize = 32;

/// Capacity of a service or event identifier (the thing model allows up to 50 characters).
pub const IDENTIFIER_MAX: usize = 64;

/// The code of a successful Alink reply.
pub const CODE_OK: u32 = 200;

/// What went wrong in the thing model. Holds no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ThingError {
    /// The platform answered post `id` with a code other than 200 (e.g. 460 "request parameter
    /// error", 6106 "too many properties"). The post is no longer outstanding.
    Refused {
        /// The id of the post.
        id: u32,
        /// The platform's code.
        code: u32,
    },
    /// A reply for an id that is not outstanding: a duplicate, a reply that came after
    /// [`Thing::take_expired`] gave the post up, or a reply to another client of this device.
    UnmatchedReply {
        /// The id in the reply.
        id: u32,
        /// The code in the reply.
        code: u32,
    },
    /// `N` posts already wait for their reply: wait for replies, or give old ones up
    /// ([`Thing::take_expired`], [`Thing::forget`]).
    TooManyPending,
    /// The RRPC response comes after the deadline ([`Thing::rrpc_deadline`]): the platform has
    /// failed the call with `TIMEOUT` already, so nothing is built to publish.
    RrpcLate {
        /// Milliseconds since the request arrived.
        elapsed_ms: u64,
        /// The deadline, in milliseconds.
        deadline_ms: u64,
    },
    /// A message on this device's thing-model topics is not the JSON Alink documents (not an
    /// object, no `id`, an id that is not a number or too long, a `code` that is not a number).
    Malformed,
    /// The output buffer (or a topic) is too small for the message; nothing was truncated.
    BufferTooSmall,
    /// An argument is not acceptable: an identifier with characters the thing model forbids,
    /// params that are not a JSON object, data that is not JSON.
    InvalidInput,
}

impl fmt::Display for ThingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThingError::Refused { id, code } => {
                write!(f, "the platform refused post {id} with code {code}")
            }
            ThingError::UnmatchedReply { id, code } => write!(
                f,
                "reply (code {code}) to post {id}, which is not outstanding (late or duplicate)"
            ),
            ThingError::TooManyPending => f.write_str("too many posts wait for their reply"),
            ThingError::RrpcLate {
                elapsed_ms,
                deadline_ms,
            } => write!(
                f,
                "RRPC response {elapsed_ms} ms after the request, past the {deadline_ms} ms \
                 deadline: the platform has given up"
            ),
            ThingError::Malformed => f.write_str("not the Alink JSON the platform documents"),
            ThingError::BufferTooSmall => f.write_str("the message does not fit the buffer"),
            ThingError::InvalidInput => f.write_str("invalid input"),
        }
    }
}

impl core::error::Error for ThingError {}

impl From<ThingError> for CloudError {
    /// [`ThingError::Refused`] is [`CloudError::Rejected`] (the code saturated to `u16`),
    /// [`ThingError::BufferTooSmall`] and [`ThingError::TooManyPending`]
    /// [`CloudError::RequestTooLarge`], [`ThingError::InvalidInput`]
    /// [`CloudError::InvalidInput`], [`ThingError::RrpcLate`] [`CloudError::NoResponse`],
    /// [`ThingError::UnmatchedReply`] and [`ThingError::Malformed`]
    /// [`CloudError::InvalidResponse`].
    fn from(e: ThingError) -> Self {
        match e {
            ThingError::Refused { code, .. } => CloudError::Rejected {
                status: u16::try_from(code).unwrap_or(u16::MAX),
            },
            ThingError::BufferTooSmall | ThingError::TooManyPending => CloudError::RequestTooLarge,
            ThingError::InvalidInput => CloudError::InvalidInput,
            ThingError::RrpcLate { .. } => CloudError::NoResponse,
            ThingError::UnmatchedReply { .. } | ThingError::Malformed => {
                CloudError::InvalidResponse
            }
        }
    }
}

impl From<CloudError> for ThingError {
    /// For the topic helpers of [`Device`]: [`CloudError::InvalidInput`] (a bad identifier) is
    /// [`ThingError::InvalidInput`], anything else (a topic longer than its buffer)
    /// [`ThingError::BufferTooSmall`].
    fn from(e: CloudError) -> Self {
        match e {
            CloudError::InvalidInput => ThingError::InvalidInput,
            _ => ThingError::BufferTooSmall,
        }
    }
}

/// A message to publish: its topic and the payload written into the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'b> {
    topic: Topic,
    payload: &'b [u8],
    id: Option<u32>,
}

impl<'b> Message<'b> {
    /// The topic to publish to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The payload (a slice of the caller's buffer).
    pub fn payload(&self) -> &'b [u8] {
        self.payload
    }

    /// The Alink id of a post (`None` for a reply).
    pub fn id(&self) -> Option<u32> {
        self.id
    }
}

/// What a post was: a property report or an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PostKind {
    /// `thing.event.property.post`.
    Property,
    /// `thing.event.{identifier}.post`.
    Event,
}

/// A post waiting for its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pending {
    /// The Alink id.
    pub id: u32,
    /// Property or event.
    pub kind: PostKind,
    /// When the post was built.
    pub posted_at: Instant,
}

/// The platform's code-200 answer to a post, matched with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostReply<'p> {
    /// The id of the post.
    pub id: u32,
    /// Property or event.
    pub kind: PostKind,
    /// The event identifier (from the reply topic) for an event post.
    pub event: Option<&'p str>,
    /// The reply's `data` as raw JSON (often `{}`), empty if absent.
    pub data: &'p [u8],
    /// Time from the post to its reply.
    pub latency: Duration,
}

/// Where a reply goes: property set or a service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplyTarget {
    /// `…/thing/service/property/set_reply`.
    PropertySet,
    /// An asynchronous service call: `…/thing/service/{identifier}_reply`.
    Service(heapless::String<IDENTIFIER_MAX>),
    /// A synchronous service call, which the platform sends over RRPC: the reply goes to the
    /// request's own topic `/ext/rrpc/{rrpc_id}/sys/{pk}/{dn}/thing/service/{identifier}`,
    /// within the RRPC deadline.
    SyncService {
        /// The RRPC message id.
        rrpc_id: heapless::String<MESSAGE_ID_MAX>,
        /// The service identifier.
        identifier: heapless::String<IDENTIFIER_MAX>,
    },
}

/// The ticket to answer a cloud request: its id and where the reply goes. Owned, so that the
/// reply can be sent later or from another task ([`Thing::reply`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplyTo {
    /// The request's id (echoed in the reply).
    pub id: heapless::String<REQUEST_ID_MAX>,
    /// Property set or which service.
    pub target: ReplyTarget,
    /// When [`Thing::handle`] saw the request (a synchronous service call must be answered
    /// within [`Thing::rrpc_deadline`] of it).
    pub received_at: Instant,
}

/// A request from the cloud: a property set or a service call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'p> {
    /// How to answer it.
    pub reply_to: ReplyTo,
    /// `params` as raw JSON (an object, e.g. `{"Power":"on"}`); `{}` if absent.
    pub params: &'p [u8],
    /// `method` (e.g. `thing.service.property.set`), empty if absent.
    pub method: &'p str,
}

/// The ticket to answer an RRPC request: its message id, its topic and when it arrived. Owned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RrpcTicket {
    /// `{messageId}` of `/sys/{pk}/{dn}/rrpc/request/{messageId}` or
    /// `/ext/rrpc/{messageId}/{topic}`.
    pub message_id: heapless::String<MESSAGE_ID_MAX>,
    /// For an RRPC on a custom topic, `/ext/rrpc/{messageId}/{topic}`: the `{topic}`; the
    /// response goes to the request's own topic. `None` for the system RRPC topic.
    pub custom_topic: Option<Topic>,
    /// When [`Thing::handle`] saw the request.
    pub received_at: Instant,
}

/// An RRPC request: raw bytes (the platform sends what the server passed, Base64-decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrpcRequest<'p> {
    /// How to answer it.
    pub ticket: RrpcTicket,
    /// The request payload.
    pub payload: &'p [u8],
}

/// A received message, as [`Thing::handle`] sorted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound<'p> {
    /// The platform accepted a post (code 200). A refusal is [`ThingError::Refused`].
    PostReply(PostReply<'p>),
    /// `/sys/{pk}/{dn}/thing/service/property/set`: answer with [`Thing::reply`].
    PropertySet(Request<'p>),
    /// `/sys/{pk}/{dn}/thing/service/{identifier}`: answer with [`Thing::reply`].
    Service {
        /// The service identifier.
        identifier: &'p str,
        /// The call.
        request: Request<'p>,
    },
    /// `/sys/{pk}/{dn}/rrpc/request/{messageId}` or, RRPC on a custom topic,
    /// `/ext/rrpc/{messageId}/{topic}`: publish the response on the topic
    /// [`Thing::rrpc_response`] gives, before the deadline. (A synchronous service call,
    /// `/ext/rrpc/{messageId}/sys/{pk}/{dn}/thing/service/{identifier}`, is
    /// [`Inbound::Service`] with a [`ReplyTarget::SyncService`] ticket.)
    Rrpc(RrpcRequest<'p>),
    /// `/broadcast/{pk}/{name}`: a broadcast to the devices of the product that subscribed to
    /// this topic ([`Thing::broadcast_topic`]).
    Broadcast {
        /// The topic after `/broadcast/{pk}/`.
        name: &'p str,
        /// The payload.
        payload: &'p [u8],
    },
    /// `/sys/{pk}/{dn}/broadcast/request/{messageId}`: a broadcast to every online device of
    /// the product (delivered without a subscription).
    ProductBroadcast {
        /// The platform's message id.
        message_id: &'p str,
        /// The payload.
        payload: &'p [u8],
    },
    /// `/{pk}/{dn}/user/{name}`: a custom topic.
    Custom {
        /// The topic after `/{pk}/{dn}/user/`.
        name: &'p str,
        /// The payload.
        payload: &'p [u8],
    },
    /// Another system topic of this device (OTA, NTP, raw data, …): left to the application.
    OtherSys {
        /// The topic after `/sys/{pk}/{dn}/`.
        suffix: &'p str,
        /// The payload.
        payload: &'p [u8],
    },
}

struct Table<const N: usize> {
    next_id: u32,
    pending: heapless::Vec<Pending, N>,
}

/// A device's thing model: builds posts and replies, sorts received messages, and tracks the
/// posts waiting for a reply (up to `N`). See the [module documentation](self).
pub struct Thing<'a, const N: usize = 8> {
    device: Device<'a>,
    rrpc_deadline: Duration,
    table: Mutex<CriticalSectionRawMutex, RefCell<Table<N>>>,
}

impl<const N: usize> fmt::Debug for Thing<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thing")
            .field("device", &self.device)
            .field("pending", &self.pending())
            .finish()
    }
}

/// The envelope fields read with `serde-json-core` (unknown fields are skipped).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a str>,
    code: Option<i64>,
    method: Option<&'a str>,
}

/// Identifier characters of the thing model: letters, digits, `_` (and `-`, which Aliyun
/// accepts in custom modules).
fn check_identifier(identifier: &str) -> Result<(), ThingError> {
    if identifier.is_empty()
        || identifier.len() > IDENTIFIER_MAX
        || !identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ThingError::InvalidInput);
    }
    Ok(())
}

impl<'a, const N: usize> Thing<'a, N> {
    /// The thing model of `device`, with no post outstanding. Ids start at 1.
    pub const fn new(device: Device<'a>) -> Self {
        Self {
            device,
            rrpc_deadline: RRPC_DEADLINE,
            table: Mutex::new(RefCell::new(Table {
                next_id: 1,
                pending: heapless::Vec::new(),
            })),
        }
    }

    /// Sets the RRPC deadline (default [`RRPC_DEADLINE`]): use the `Timeout` the server passes
    /// to `RRpc` if it is shorter than 8 s.
    pub fn with_rrpc_deadline(mut self, deadline: Duration) -> Self {
        self.rrpc_deadline = deadline;
        self
    }

    /// The RRPC deadline.
    pub fn rrpc_deadline(&self) -> Duration {
        self.rrpc_deadline
    }

    /// The device.
    pub fn device(&self) -> Device<'a> {
        self.device
    }

    /// The topic filters to subscribe to (QoS 1 or 0, as the application likes), those of
    /// Aliyun's Link SDK:
    /// `/sys/{pk}/{dn}/thing/event/+/post_reply` (property and event replies),
    /// `/sys/{pk}/{dn}/thing/service/property/set`, `/sys/{pk}/{dn}/thing/service/+`
    /// (asynchronous service calls), `/ext/rrpc/+/sys/{pk}/{dn}/thing/service/+` (synchronous
    /// service calls) and `/sys/{pk}/{dn}/rrpc/request/+` (RRPC). Aliyun delivers RRPC
    /// requests without a subscription; subscribing does no harm and a plain broker needs it.
    /// Broadcast topics ([`broadcast_topic`](Self::broadcast_topic)) and custom topics
    /// ([`Device::user_topic`]) are the application's to choose.
    pub fn subscriptions(&self) -> Result<[Topic; 5], ThingError> {
        let mut sync = Topic::new();
        write!(
            sync,
            "/ext/rrpc/+/sys/{}/{}/thing/service/+",
            self.device.product_key(),
            self.device.device_name()
        )
        .map_err(|_| ThingError::BufferTooSmall)?;
        Ok([
            self.device.sys_topic("thing/event/+/post_reply")?,
            self.device.sys_topic("thing/service/property/set")?,
            self.device.sys_topic("thing/service/+")?,
            sync,
            self.device.sys_topic("rrpc/request/+")?,
        ])
    }

    /// A broadcast topic of the product, `/broadcast/{pk}/{name}`, to subscribe to (Aliyun:
    /// at most 1 000 devices per broadcast topic; `name` is the application's, without
    /// spaces or wildcards).
    pub fn broadcast_topic(&self, name: &str) -> Result<Topic, ThingError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'+' && b != b'#')
        {
            return Err(ThingError::InvalidInput);
        }
        let mut t = Topic::new();
        write!(t, "/broadcast/{}/{name}", self.device.product_key())
            .map_err(|_| ThingError::BufferTooSmall)?;
        Ok(t)
    }

    /// The posts waiting for their reply, oldest first.
    pub fn pending(&self) -> heapless::Vec<Pending, N> {
        self.table.lock(|t| t.borrow().pending.clone())
    }

    /// Gives post `id` up (e.g. its publish failed). Returns whether it was outstanding; a
    /// reply that comes later is [`ThingError::UnmatchedReply`].
    pub fn forget(&self, id: u32) -> bool {
        self.table.lock(|t| {
            let mut t = t.borrow_mut();
            let before = t.pending.len();
            t.pending.retain(|p| p.id != id);
            t.pending.len() != before
        })
    }

    /// Gives up the oldest post that has waited longer than `timeout` at `now`, and returns it
    /// (call it until `None`). A reply that comes later is [`ThingError::UnmatchedReply`].
    pub fn take_expired(&self, now: Instant, timeout: Duration) -> Option<Pending> {
        self.table.lock(|t| {
            let mut t = t.borrow_mut();
            let pos = t.pending.iter().position(|p| {
                now.checked_duration_since(p.posted_at)
                    .is_some_and(|age| age > timeout)
            })?;
            Some(t.pending.remove(pos))
        })
    }

    /// Reserves an id for a post at `now`.
    fn reserve(&self, kind: PostKind, now: Instant) -> Result<u32, ThingError> {
        self.table.lock(|t| {
            let mut t = t.borrow_mut();
            if t.pending.is_full() {
                return Err(ThingError::TooManyPending);
            }
            let id = t.next_id;
            // Ids are 1..=u32::MAX (Alink: 0 to 4294967295); skip 0 on wrap.
            t.next_id = id.checked_add(1).unwrap_or(1);
            t.pending
                .push(Pending {
                    id,
                    kind,
                    posted_at: now,
                })
                .map_err(|_| ThingError::TooManyPending)?;
            Ok(id)
        })
    }

    fn post<'b>(
        &self,
        kind: PostKind,
        topic: Topic,
        method_event: Option<&str>,
        buf: &'b mut [u8],
        params: impl FnOnce(&mut [u8]) -> Result<usize, ThingError>,
    ) -> Result<Message<'b>, ThingError> {
        let id = self.reserve(kind, Instant::now())?;
        let built = (|| {
            let mut w = Writer::new(buf);
            write!(w, r#"{{"id":"{id}","version":"1.0","params":"#)
                .map_err(|_| ThingError::BufferTooSmall)?;
            let n = params(w.rest())?;
            w.advance(n)?;
            match method_event {
                None => w.push_str(r#","method":"thing.event.property.post"}"#)?,
                Some(e) => write!(w, r#","method":"thing.event.{e}.post"}}"#)
                    .map_err(|_| ThingError::BufferTooSmall)?,
            }
            Ok(w.len())
        })();
        match built {
            Ok(len) => Ok(Message {
                topic,
                payload: buf.get(..len).ok_or(ThingError::BufferTooSmall)?,
                id: Some(id),
            }),
            Err(e) => {
                self.forget(id);
                Err(e)
            }
        }
    }

    /// A property report with `params` serialised by `serde-json-core` (a struct or map whose
    /// fields are the thing model's property identifiers). The id is kept until the reply.
    /// [`ThingError::TooManyPending`] if `N` posts wait, [`ThingError::BufferTooSmall`] if the
    /// message does not fit `buf`.
    pub fn property_post<'b, P: Serialize + ?Sized>(
        &self,
        params: &P,
        buf: &'b mut [u8],
    ) -> Result<Message<'b>, ThingError> {
        let topic = self.device.property_post()?;
        self.post(PostKind::Property, topic, None, buf, |out| {
            serialize_object(params, out)
        })
    }

    /// A property report with `params` given as a serialised JSON object (`{"Power":"on"}`).
    /// [`ThingError::InvalidInput`] if it is not one.
    pub fn property_post_json<'b>(
        &self,
        params: &[u8],
        buf: &'b mut [u8],
    ) -> Result<Message<'b>, ThingError> {
        check_object(params)?;
        let topic = self.device.property_post()?;
        self.post(PostKind::Property, topic, None, buf, |out| {
            copy_into(params, out)
        })
    }

    /// An event report on `/sys/{pk}/{dn}/thing/event/{identifier}/post`, method
    /// `thing.event.{identifier}.post`, with `params` (the event's output parameters)
    /// serialised by `serde-json-core`.
    pub fn event_post<'b, P: Serialize + ?Sized>(
        &self,
        identifier: &str,
        params: &P,
        buf: &'b mut [u8],
    ) -> Result<Message<'b>, ThingError> {
        check_identifier(identifier)?;
        let topic = self.device.event_post(identifier)?;
        self.post(PostKind::Event, topic, Some(identifier), buf, |out| {
            serialize_object(params, out)
        })
    }

    /// [`event_post`](Self::event_post) with `params` given as a serialised JSON object.
    pub fn event_post_json<'b>(
        &self,
        identifier: &str,
        params: &[u8],
        buf: &'b mut [u8],
    ) -> Result<Message<'b>, ThingError> {
        check_identifier(identifier)?;
        check_object(params)?;
        let topic = self.device.event_post(identifier)?;
        self.post(PostKind::Event, topic, Some(identifier), buf, |out| {
            copy_into(params, out)
        })
    }

    /// The reply to a property set or service call: `{"id":"…","code":<code>,"data":<data>}`
    /// on `…/property/set_reply` or `…/service/{identifier}_reply`. `data` is raw JSON (an
    /// object for services with output parameters), `{}` when `None`. Use [`CODE_OK`] (200)
    /// for success.
    ///
    /// A synchronous service call ([`ReplyTarget::SyncService`]) travels over RRPC: after
    /// [`rrpc_deadline`](Self::rrpc_deadline) from its arrival the reply is refused with
    /// [`ThingError::RrpcLate`] (checked at the current time).
    pub fn reply<'b>(
        &self,
        to: &ReplyTo,
        code: u32,
        data: Option<&[u8]>,
        buf: &'b mut [u8],
    ) -> Result<Message<'b>, ThingError> {
        let data = data.unwrap_or(b"{}");
        check_value(data)?;
        self.build_reply(to, code, buf, |out| copy_into(data, out))
    }

    /// [`reply`](Self::reply) with `data` serialised by `serde-json-core`.
    pub fn reply_with<'b, D: Serialize + ?Sized>(
        &self,
        to: &ReplyTo,
        code: u32,
        data: &D,
        buf: &'b mut [u8],
    ) -> Result<Message<'b>, ThingError> {
        self.build_reply(to, code, buf, |out| {
            serde_json_core::to_slice(data, out).map_err(|_| ThingError::BufferTooSmall)
        })
    }

    fn build_reply<'b>(
        &self,
        to: &ReplyTo,
        code: u32,
        buf: &'b mut [u8],
        data: impl FnOnce(&mut [u8]) -> Result<usize, ThingError>,
    ) -> Result<Message<'b>, ThingError> {
        let topic = match &to.target {
            ReplyTarget::PropertySet => self.device.property_set_reply()?,
            ReplyTarget::Service(identifier) => self.device.service_reply(identifier)?,
            ReplyTarget::SyncService {
                rrpc_id,
                identifier,
            } => {
                self.check_deadline(to.received_at, Instant::now())?;
                let mut t = Topic::new();
                write!(
                    t,
                    "/ext/rrpc/{rrpc_id}/sys/{}/{}/thing/service/{identifier}",
                    self.device.product_key(),
                    self.device.device_name()
                )
                .map_err(|_| ThingError::BufferTooSmall)?;
                t
            }
        };
        let mut w = Writer::new(buf);
        write!(w, r#"{{"id":"{}","code":{code},"data":"#, to.id)
            .map_err(|_| ThingError::BufferTooSmall)?;
        let n = data(w.rest())?;
        w.advance(n)?;
        w.push_str("}")?;
        let len = w.len();
        Ok(Message {
            topic,
            payload: buf.get(..len).ok_or(ThingError::BufferTooSmall)?,
            id: None,
        })
    }

    /// The topic of the response to an RRPC request, `/sys/{pk}/{dn}/rrpc/response/{messageId}`,
    /// if `now` is within [`rrpc_deadline`](Self::rrpc_deadline) of its arrival; publish the
    /// response bytes there. [`ThingError::RrpcLate`] after the deadline: the platform has
    /// already failed the call, do not publish.
    ///
    /// For an RRPC on a custom topic ([`RrpcTicket::custom_topic`]) the response topic is the
    /// request's, `/ext/rrpc/{messageId}/{topic}`.
    pub fn rrpc_response(&self, ticket: &RrpcTicket, now: Instant) -> Result<Topic, ThingError> {
        self.check_deadline(ticket.received_at, now)?;
        let mut t = Topic::new();
        match &ticket.custom_topic {
            None => write!(
                t,
                "/sys/{}/{}/rrpc/response/{}",
                self.device.product_key(),
                self.device.device_name(),
                ticket.message_id
            ),
            Some(topic) => write!(t, "/ext/rrpc/{}/{topic}", ticket.message_id),
        }
        .map_err(|_| ThingError::BufferTooSmall)?;
        Ok(t)
    }

    fn check_deadline(&self, received_at: Instant, now: Instant) -> Result<(), ThingError> {
        let elapsed = now
            .checked_duration_since(received_at)
            .unwrap_or(Duration::from_ticks(0));
        if elapsed > self.rrpc_deadline {
            return Err(ThingError::RrpcLate {
                elapsed_ms: elapsed.as_millis(),
                deadline_ms: self.rrpc_deadline.as_millis(),
            });
        }
        Ok(())
    }

    /// Sorts a received message (see [`Inbound`]), at the current time. `Ok(None)` for a topic
    /// that is not this device's or this product's, and for this device's own replies coming
    /// back (a broker without no-local echoes `…_reply` to a `thing/service/#` subscriber).
    ///
    /// Errors: [`ThingError::Refused`] (a matched reply with a code other than 200),
    /// [`ThingError::UnmatchedReply`], [`ThingError::Malformed`].
    pub fn handle<'p>(
        &self,
        topic: &'p str,
        payload: &'p [u8],
    ) -> Result<Option<Inbound<'p>>, ThingError> {
        self.handle_at(topic, payload, Instant::now())
    }

    /// [`handle`](Self::handle) at `now` (when the message arrived).
    pub fn handle_at<'p>(
        &self,
        topic: &'p str,
        payload: &'p [u8],
        now: Instant,
    ) -> Result<Option<Inbound<'p>>, ThingError> {
        let pk = self.device.product_key();
        let dn = self.device.device_name();
        if let Some(name) = topic
            .strip_prefix("/broadcast/")
            .and_then(|t| t.strip_prefix(pk))
            .and_then(|t| t.strip_prefix('/'))
        {
            return Ok(Some(Inbound::Broadcast { name, payload }));
        }
        let own = |t: &'p str| {
            t.strip_prefix(pk)
                .and_then(|t| t.strip_prefix('/'))
                .and_then(|t| t.strip_prefix(dn))
                .and_then(|t| t.strip_prefix('/'))
        };
        if let Some(name) = topic
            .strip_prefix('/')
            .and_then(own)
            .and_then(|t| t.strip_prefix("user/"))
        {
            return Ok(Some(Inbound::Custom { name, payload }));
        }
        if let Some(rest) = topic.strip_prefix("/ext/rrpc/") {
            let (message_id, custom) = rest.split_once('/').ok_or(ThingError::Malformed)?;
            let rrpc_id = rrpc_id(message_id)?;
            // A synchronous service call of this device.
            if let Some(identifier) = custom
                .strip_prefix("sys/")
                .and_then(own)
                .and_then(|t| t.strip_prefix("thing/service/"))
                && check_identifier(identifier).is_ok()
            {
                let target = ReplyTarget::SyncService {
                    rrpc_id,
                    identifier: heapless::String::try_from(identifier)
                        .map_err(|_| ThingError::Malformed)?,
                };
                let request = parse_request(payload, target, now)?;
                return Ok(Some(Inbound::Service {
                    identifier,
                    request,
                }));
            }
            if custom.is_empty() {
                return Err(ThingError::Malformed);
            }
            return Ok(Some(Inbound::Rrpc(RrpcRequest {
                ticket: RrpcTicket {
                    message_id: rrpc_id,
                    custom_topic: Some(
                        heapless::String::try_from(custom).map_err(|_| ThingError::Malformed)?,
                    ),
                    received_at: now,
                },
                payload,
            })));
        }
        let Some(suffix) = topic.strip_prefix("/sys/").and_then(own) else {
            return Ok(None);
        };
        if let Some(message_id) = suffix.strip_prefix("rrpc/request/") {
            return Ok(Some(Inbound::Rrpc(RrpcRequest {
                ticket: RrpcTicket {
                    message_id: rrpc_id(message_id)?,
                    custom_topic: None,
                    received_at: now,
                },
                payload,
            })));
        }
        if let Some(message_id) = suffix.strip_prefix("broadcast/request/") {
            return Ok(Some(Inbound::ProductBroadcast {
                message_id,
                payload,
            }));
        }
        if let Some(event) = suffix
            .strip_prefix("thing/event/")
            .and_then(|t| t.strip_suffix("/post_reply"))
        {
            return self.post_reply(event, payload, now).map(Some);
        }
        if let Some(service) = suffix.strip_prefix("thing/service/") {
            if service.ends_with("_reply") {
                // Our own reply, echoed by the broker.
                return Ok(None);
            }
            let target = if service == "property/set" {
                ReplyTarget::PropertySet
            } else if check_identifier(service).is_ok() {
                ReplyTarget::Service(
                    heapless::String::try_from(service).map_err(|_| ThingError::Malformed)?,
                )
            } else {
                return Ok(Some(Inbound::OtherSys { suffix, payload }));
            };
            let request = parse_request(payload, target, now)?;
            return Ok(Some(if service == "property/set" {
                Inbound::PropertySet(request)
            } else {
                Inbound::Service {
                    identifier: service,
                    request,
                }
            }));
        }
        Ok(Some(Inbound::OtherSys { suffix, payload }))
    }

    fn post_reply<'p>(
        &self,
        event: &'p str,
        payload: &'p [u8],
        now: Instant,
    ) -> Result<Inbound<'p>, ThingError> {
        let (env, _) = serde_json_core::from_slice::<Envelope<'_>>(payload)
            .map_err(|_| ThingError::Malformed)?;
        let id: u32 = env
            .id
            .and_then(|s| s.parse().ok())
            .ok_or(ThingError::Malformed)?;
        let code = env
            .code
            .and_then(|c| u32::try_from(c).ok())
            .ok_or(ThingError::Malformed)?;
        let kind = if event == "property" {
            PostKind::Property
        } else {
            PostKind::Event
        };
        let found = self.table.lock(|t| {
            let mut t = t.borrow_mut();
            let pos = t
                .pending
                .iter()
                .position(|p| p.id == id && p.kind == kind)?;
            Some(t.pending.remove(pos))
        });
        let Some(found) = found else {
            return Err(ThingError::UnmatchedReply { id, code });
        };
        if code != CODE_OK {
            return Err(ThingError::Refused { id, code });
        }
        Ok(Inbound::PostReply(PostReply {
            id,
            kind,
            event: (kind == PostKind::Event).then_some(event),
            data: member(payload, "data")?.unwrap_or_default(),
            latency: now
                .checked_duration_since(found.posted_at)
                .unwrap_or(Duration::from_ticks(0)),
        }))
    }
}

/// An RRPC message id from a topic level: 1 to [`MESSAGE_ID_MAX`] characters, no `/`.
fn rrpc_id(level: &str) -> Result<heapless::String<MESSAGE_ID_MAX>, ThingError> {
    if level.is_empty() || level.contains('/') || !level.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ThingError::Malformed);
    }
    heapless::String::try_from(level).map_err(|_| ThingError::Malformed)
}

fn parse_request(
    payload: &[u8],
    target: ReplyTarget,
    received_at: Instant,
) -> Result<Request<'_>, ThingError> {
    let (env, _) =
        serde_json_core::from_slice::<Envelope<'_>>(payload).map_err(|_| ThingError::Malformed)?;
    let id = env.id.ok_or(ThingError::Malformed)?;
    // The id is echoed inside a JSON string: keep it to printable characters that need no
    // escaping (Alink ids are decimal numbers).
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return Err(ThingError::Malformed);
    }
    let params = match member(payload, "params")? {
        Some(p) if p.first() == Some(&b'{') => p,
        Some(_) => return Err(ThingError::Malformed),
        None => b"{}",
    };
    Ok(Request {
        reply_to: ReplyTo {
            id: heapless::String::try_from(id).map_err(|_| ThingError::Malformed)?,
            target,
            received_at,
        },
        params,
        method: env.method.unwrap_or(""),
    })
}

fn serialize_object<P: Serialize + ?Sized>(
    params: &P,
    out: &mut [u8],
) -> Result<usize, ThingError> {
    let n = serde_json_core::to_slice(params, out).map_err(|_| ThingError::BufferTooSmall)?;
    let written = out.get(..n).ok_or(ThingError::BufferTooSmall)?;
    if written.first() != Some(&b'{') {
        return Err(ThingError::InvalidInput);
    }
    Ok(n)
}

fn copy_into(src: &[u8], out: &mut [u8]) -> Result<usize, ThingError> {
    out.get_mut(..src.len())
        .ok_or(ThingError::BufferTooSmall)?
        .copy_from_slice(src);
    Ok(src.len())
}

/// Checks that `json` is one JSON object (with optional surrounding white space).
fn check_object(json: &[u8]) -> Result<(), ThingError> {
    let start = skip_ws(json, 0).map_err(|_| ThingError::InvalidInput)?;
    if json.get(start) != Some(&b'{') {
        return Err(ThingError::InvalidInput);
    }
    check_value(json)
}

/// Checks that `json` is one JSON value as far as its structure goes (strings closed,
/// brackets balanced, nothing after it): what keeps the message around it well-formed.
fn check_value(json: &[u8]) -> Result<(), ThingError> {
    let start = skip_ws(json, 0).map_err(|_| ThingError::InvalidInput)?;
    let end = skip_value(json, start).map_err(|_| ThingError::InvalidInput)?;
    if !skip_ws_end(json, end) {
        return Err(ThingError::InvalidInput);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// A bounded JSON scanner: finds the raw text of a top-level member (serde-json-core cannot
// hand out a nested value unparsed). No recursion; every index is checked.
// ------------------------------------------------------------------------------------------

fn next(i: usize) -> Result<usize, ThingError> {
    i.checked_add(1).ok_or(ThingError::Malformed)
}

fn skip_ws(json: &[u8], mut i: usize) -> Result<usize, ThingError> {
    while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i = next(i)?;
    }
    Ok(i)
}

fn skip_ws_end(json: &[u8], i: usize) -> bool {
    json.get(i..)
        .is_some_and(|rest| rest.iter().all(u8::is_ascii_whitespace))
}

/// `json[i]` is `"`: the index after the closing quote.
fn skip_string(json: &[u8], i: usize) -> Result<usize, ThingError> {
    let mut i = next(i)?;
    loop {
        match json.get(i) {
            None => return Err(ThingError::Malformed),
            Some(b'"') => return next(i),
            Some(b'\\') => i = next(next(i)?)?,
            Some(b) if *b < 0x20 => return Err(ThingError::Malformed),
            Some(_) => i = next(i)?,
        }
    }
}

/// The index after the value starting at `i`.
fn skip_value(json: &[u8], i: usize) -> Result<usize, ThingError> {
    match json.get(i) {
        None => Err(ThingError::Malformed),
        Some(b'"') => skip_string(json, i),
        Some(b'{' | b'[') => {
            // Open brackets as bits (1 = object), innermost lowest: nesting deeper than 64 is
            // refused.
            let (mut stack, mut depth) = (0u64, 0u32);
            let mut i = i;
            loop {
                match json.get(i) {
                    None => return Err(ThingError::Malformed),
                    Some(b'"') => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    Some(&b @ (b'{' | b'[')) => {
                        if depth >= 64 {
                            return Err(ThingError::Malformed);
                        }
                        stack = (stack << 1) | u64::from(b == b'{');
                        depth = depth.saturating_add(1);
                    }
                    Some(&b @ (b'}' | b']')) => {
                        if depth == 0 || (stack & 1 == 1) != (b == b'}') {
                            return Err(ThingError::Malformed);
                        }
                        stack >>= 1;
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return next(i);
                        }
                    }
                    Some(_) => {}
                }
                i = next(i)?;
            }
        }
        Some(_) => {
            let start = i;
            let mut i = i;
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                i = next(i)?;
            }
            if i == start {
                return Err(ThingError::Malformed);
            }
            Ok(i)
        }
    }
}

/// The raw text of the top-level member `key` of the object `json`, if present.
fn member<'j>(json: &'j [u8], key: &str) -> Result<Option<&'j [u8]>, ThingError> {
    let mut i = skip_ws(json, 0)?;
    if json.get(i) != Some(&b'{') {
        return Err(ThingError::Malformed);
    }
    i = skip_ws(json, next(i)?)?;
    if json.get(i) == Some(&b'}') {
        return Ok(None);
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return Err(ThingError::Malformed);
        }
        let key_end = skip_string(json, i)?;
        let name = json
            .get(next(i)?..key_end.saturating_sub(1))
            .ok_or(ThingError::Malformed)?;
        i = skip_ws(json, key_end)?;
        if json.get(i) != Some(&b':') {
            return Err(ThingError::Malformed);
        }
        let start = skip_ws(json, next(i)?)?;
        let end = skip_value(json, start)?;
        if name == key.as_bytes() {
            return json.get(start..end).map(Some).ok_or(ThingError::Malformed);
        }
        i = skip_ws(json, end)?;
        match json.get(i) {
            Some(b',') => i = skip_ws(json, next(i)?)?,
            Some(b'}') => return Ok(None),
            _ => return Err(ThingError::Malformed),
        }
    }
}

/// Writes into a byte buffer; overflow is [`ThingError::BufferTooSmall`].
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn rest(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.len..).unwrap_or_default()
    }

    fn advance(&mut self, n: usize) -> Result<(), ThingError> {
        let len = self.len.checked_add(n).ok_or(ThingError::BufferTooSmall)?;
        if len > self.buf.len() {
            return Err(ThingError::BufferTooSmall);
        }
        self.len = len;
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), ThingError> {
        let n = copy_into(bytes, self.rest())?;
        self.advance(n)
    }

    fn push_str(&mut self, s: &str) -> Result<(), ThingError> {
        self.push(s.as_bytes())
    }
}

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::borrow::ToOwned;
    use std::format;
    use std::vec::Vec;

    const PK: &str = "a1X2bEnP82z";
    const DN: &str = "example1";

    fn thing() -> Thing<'static, 2> {
        Thing::new(Device::new(PK, DN).unwrap())
    }

    fn t0() -> Instant {
        Instant::from_secs(1000)
    }

    #[derive(Serialize)]
    struct Props {
        #[serde(rename = "Power")]
        power: &'static str,
        #[serde(rename = "WF")]
        wf: u32,
    }

    // Aliyun's documented property post: params {"Power":"on","WF":"2"}.
    #[test]
    fn property_post_serialised_and_raw() {
        let thing = thing();
        let mut buf = [0u8; 256];
        let m = thing
            .property_post(&Props { power: "on", wf: 2 }, &mut buf)
            .unwrap();
        assert_eq!(
            m.topic(),
            "/sys/a1X2bEnP82z/example1/thing/event/property/post"
        );
        assert_eq!(
            m.payload(),
            br#"{"id":"1","version":"1.0","params":{"Power":"on","WF":2},"method":"thing.event.property.post"}"#
        );
        assert_eq!(m.id(), Some(1));
        let m = thing
            .property_post_json(
                br#"{"Power":{"value":"on","time":1524448722000}}"#,
                &mut buf,
            )
            .unwrap();
        assert_eq!(
            m.payload(),
            br#"{"id":"2","version":"1.0","params":{"Power":{"value":"on","time":1524448722000}},"method":"thing.event.property.post"}"#
        );
        let ids: Vec<u32> = thing.pending().iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 2]);
        // Table full (N = 2): a typed error, and no id is used up.
        assert_eq!(
            thing.property_post_json(b"{}", &mut buf).unwrap_err(),
            ThingError::TooManyPending
        );
        assert!(thing.forget(1));
        assert_eq!(
            thing.property_post_json(b"{}", &mut buf).unwrap().id(),
            Some(3)
        );
    }

    #[test]
    fn bad_params_and_small_buffers_are_errors() {
        let thing = thing();
        let mut buf = [0u8; 256];
        for bad in [
            &b"[1]"[..],
            b"\"x\"",
            b"{",
            b"{\"a\":1}}",
            b"{\"a\":[1}}",
            b"",
        ] {
            assert_eq!(
                thing.property_post_json(bad, &mut buf).unwrap_err(),
                ThingError::InvalidInput,
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        assert_eq!(
            thing.property_post(&5u32, &mut buf).unwrap_err(),
            ThingError::InvalidInput
        );
        let mut small = [0u8; 40];
        assert_eq!(
            thing.property_post_json(b"{}", &mut small).unwrap_err(),
            ThingError::BufferTooSmall
        );
        // Failed builds leave nothing outstanding.
        assert!(thing.pending().is_empty());
        assert_eq!(
            thing.event_post_json("a/b", b"{}", &mut buf).unwrap_err(),
            ThingError::InvalidInput
        );
    }

    // The documented reply `{"code":200,"data":{},"id":"123","message":"success",...}` with the
    // members in the platform's order, and a refusal (6106: more than 200 properties).
    #[test]
    fn replies_are_matched_refused_or_unmatched() {
        let thing = thing();
        let mut buf = [0u8; 256];
        let id = thing
            .property_post_json(br#"{"Power":"on"}"#, &mut buf)
            .unwrap()
            .id()
            .unwrap();
        let topic = "/sys/a1X2bEnP82z/example1/thing/event/property/post_reply";
        let ok = format!(
            r#"{{"code":200,"data":{{}},"id":"{id}","message":"success","method":"thing.event.property.post","version":"1.0"}}"#
        );
        let later = thing.pending()[0].posted_at + Duration::from_millis(120);
        let Some(Inbound::PostReply(r)) = thing.handle_at(topic, ok.as_bytes(), later).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (r.id, r.kind, r.event, r.data),
            (1, PostKind::Property, None, &b"{}"[..])
        );
        assert!(r.latency >= Duration::from_millis(120));
        assert!(thing.pending().is_empty());
        // The same reply again: reported, not lost silently.
        assert_eq!(
            thing.handle(topic, ok.as_bytes()).unwrap_err(),
            ThingError::UnmatchedReply { id: 1, code: 200 }
        );
        // A refusal with its code.
        let id = thing
            .property_post_json(br#"{"Power":"on"}"#, &mut buf)
            .unwrap()
            .id()
            .unwrap();
        let refused =
            format!(r#"{{"id":"{id}","code":6106,"data":{{}},"message":"invalid params"}}"#);
        assert_eq!(
            thing.handle(topic, refused.as_bytes()).unwrap_err(),
            ThingError::Refused { id: 2, code: 6106 }
        );
        assert!(thing.pending().is_empty());
        // Garbage on a reply topic.
        for bad in [
            &b"{}"[..],
            b"not json",
            br#"{"id":"x","code":200}"#,
            br#"{"id":"1"}"#,
        ] {
            assert_eq!(thing.handle(topic, bad).unwrap_err(), ThingError::Malformed);
        }
    }

    #[test]
    fn event_post_and_reply() {
        let thing = thing();
        let mut buf = [0u8; 256];
        let m = thing
            .event_post_json("Error", br#"{"ErrorCode":0}"#, &mut buf)
            .unwrap();
        assert_eq!(
            m.topic(),
            "/sys/a1X2bEnP82z/example1/thing/event/Error/post"
        );
        assert_eq!(
            m.payload(),
            br#"{"id":"1","version":"1.0","params":{"ErrorCode":0},"method":"thing.event.Error.post"}"#
        );
        // A property reply with the event's id does not match it.
        assert_eq!(
            thing
                .handle(
                    "/sys/a1X2bEnP82z/example1/thing/event/property/post_reply",
                    br#"{"id":"1","code":200,"data":{}}"#
                )
                .unwrap_err(),
            ThingError::UnmatchedReply { id: 1, code: 200 }
        );
        let r = thing
            .handle(
                "/sys/a1X2bEnP82z/example1/thing/event/Error/post_reply",
                br#"{"id":"1","code":200,"data":{},"method":"thing.event.Error.post"}"#,
            )
            .unwrap();
        let Some(Inbound::PostReply(r)) = r else {
            panic!("{r:?}")
        };
        assert_eq!((r.kind, r.event), (PostKind::Event, Some("Error")));
    }

    #[test]
    fn expired_posts_are_given_up() {
        let thing = thing();
        let mut buf = [0u8; 128];
        thing.property_post_json(b"{}", &mut buf).unwrap();
        let posted = thing.pending()[0].posted_at;
        assert_eq!(thing.take_expired(posted, Duration::from_secs(5)), None);
        let p = thing
            .take_expired(posted + Duration::from_secs(6), Duration::from_secs(5))
            .unwrap();
        assert_eq!(p.id, 1);
        assert!(thing.pending().is_empty());
    }

    // Aliyun's documented property set and service call, and their replies.
    #[test]
    fn property_set_and_service_call() {
        let thing = thing();
        let mut buf = [0u8; 256];
        let set = thing
            .handle(
                "/sys/a1X2bEnP82z/example1/thing/service/property/set",
                br#"{"id":"123","version":"1.0","params":{"temperature":"30.5"},"method":"thing.service.property.set"}"#,
            )
            .unwrap();
        let Some(Inbound::PropertySet(req)) = set else {
            panic!("{set:?}")
        };
        assert_eq!(req.params, br#"{"temperature":"30.5"}"#);
        assert_eq!(req.method, "thing.service.property.set");
        assert_eq!(req.reply_to.id, "123");
        let m = thing.reply(&req.reply_to, CODE_OK, None, &mut buf).unwrap();
        assert_eq!(
            m.topic(),
            "/sys/a1X2bEnP82z/example1/thing/service/property/set_reply"
        );
        assert_eq!(m.payload(), br#"{"id":"123","code":200,"data":{}}"#);
        // An application error code.
        let m = thing.reply(&req.reply_to, 460, None, &mut buf).unwrap();
        assert_eq!(m.payload(), br#"{"id":"123","code":460,"data":{}}"#);

        let call = thing
            .handle(
                "/sys/a1X2bEnP82z/example1/thing/service/SetWeight",
                br#"{"id":"124","version":"1.0","params":{"Power":"on","WF":"2"},"method":"thing.service.SetWeight"}"#,
            )
            .unwrap();
        let Some(Inbound::Service {
            identifier,
            request,
        }) = call
        else {
            panic!("{call:?}")
        };
        assert_eq!(identifier, "SetWeight");
        assert_eq!(request.params, br#"{"Power":"on","WF":"2"}"#);
        #[derive(Serialize)]
        struct Out {
            #[serde(rename = "OldWeight")]
            old: u32,
        }
        let m = thing
            .reply_with(&request.reply_to, CODE_OK, &Out { old: 100 }, &mut buf)
            .unwrap();
        assert_eq!(
            m.topic(),
            "/sys/a1X2bEnP82z/example1/thing/service/SetWeight_reply"
        );
        assert_eq!(
            m.payload(),
            br#"{"id":"124","code":200,"data":{"OldWeight":100}}"#
        );
        assert_eq!(
            thing
                .reply(&request.reply_to, 200, Some(b"{\"a\":"), &mut [0u8; 256])
                .unwrap_err(),
            ThingError::InvalidInput
        );
        let mut small = [0u8; 20];
        assert_eq!(
            thing
                .reply(&request.reply_to, 200, None, &mut small)
                .unwrap_err(),
            ThingError::BufferTooSmall
        );
        // Our own replies echoed by a broker are ignored.
        assert_eq!(thing.handle(m.topic(), m.payload()).unwrap(), None);
        // Malformed requests.
        for bad in [
            &br#"{"version":"1.0","params":{}}"#[..],
            br#"{"id":"1","params":[1]}"#,
            br#"{"id":"a\"b","params":{}}"#,
            br#"{"id":"123456789012345678901234567890123","params":{}}"#,
            b"{",
        ] {
            assert_eq!(
                thing
                    .handle("/sys/a1X2bEnP82z/example1/thing/service/property/set", bad)
                    .unwrap_err(),
                ThingError::Malformed,
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    // RRPC: the response topic within the deadline, a typed error after it.
    #[test]
    fn rrpc_deadline() {
        let thing = thing();
        let r = thing
            .handle_at(
                "/sys/a1X2bEnP82z/example1/rrpc/request/1186432000921341440",
                b"hello",
                t0(),
            )
            .unwrap();
        let Some(Inbound::Rrpc(req)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(req.payload, b"hello");
        assert_eq!(req.ticket.message_id, "1186432000921341440");
        assert_eq!(req.ticket.received_at, t0());
        let topic = thing
            .rrpc_response(&req.ticket, t0() + Duration::from_millis(7999))
            .unwrap();
        assert_eq!(
            topic,
            "/sys/a1X2bEnP82z/example1/rrpc/response/1186432000921341440"
        );
        assert_eq!(
            thing
                .rrpc_response(&req.ticket, t0() + Duration::from_millis(8001))
                .unwrap_err(),
            ThingError::RrpcLate {
                elapsed_ms: 8001,
                deadline_ms: 8000
            }
        );
        let short = Thing::<'_, 1>::new(thing.device()).with_rrpc_deadline(Duration::from_secs(1));
        assert!(matches!(
            short.rrpc_response(&req.ticket, t0() + Duration::from_millis(1500)),
            Err(ThingError::RrpcLate { .. })
        ));
        assert_eq!(
            thing
                .handle("/sys/a1X2bEnP82z/example1/rrpc/request/", b"")
                .unwrap_err(),
            ThingError::Malformed
        );
    }

    #[test]
    fn broadcast_custom_other_and_foreign_topics() {
        let thing = thing();
        assert_eq!(
            thing.handle("/broadcast/a1X2bEnP82z/news", b"x").unwrap(),
            Some(Inbound::Broadcast {
                name: "news",
                payload: b"x"
            })
        );
        assert_eq!(
            thing
                .handle("/a1X2bEnP82z/example1/user/get", b"y")
                .unwrap(),
            Some(Inbound::Custom {
                name: "get",
                payload: b"y"
            })
        );
        assert_eq!(
            thing
                .handle(
                    "/sys/a1X2bEnP82z/example1/thing/ota/firmware/get_reply",
                    b"{}"
                )
                .unwrap(),
            Some(Inbound::OtherSys {
                suffix: "thing/ota/firmware/get_reply",
                payload: b"{}"
            })
        );
        for foreign in [
            "/sys/a1X2bEnP82z/example2/thing/service/property/set",
            "/broadcast/other/news",
            "/a1X2bEnP82z/example1x/user/get",
            "sensors/1",
        ] {
            assert_eq!(thing.handle(foreign, b"{}").unwrap(), None, "{foreign}");
        }
        assert_eq!(
            thing
                .handle(
                    "/sys/a1X2bEnP82z/example1/broadcast/request/1234291569964771840",
                    b"z"
                )
                .unwrap(),
            Some(Inbound::ProductBroadcast {
                message_id: "1234291569964771840",
                payload: b"z"
            })
        );
        let subs = thing.subscriptions().unwrap();
        assert_eq!(
            subs.map(|t| t.as_str().to_owned()),
            [
                "/sys/a1X2bEnP82z/example1/thing/event/+/post_reply",
                "/sys/a1X2bEnP82z/example1/thing/service/property/set",
                "/sys/a1X2bEnP82z/example1/thing/service/+",
                "/ext/rrpc/+/sys/a1X2bEnP82z/example1/thing/service/+",
                "/sys/a1X2bEnP82z/example1/rrpc/request/+",
            ]
        );
        assert_eq!(
            thing.broadcast_topic("group1").unwrap(),
            "/broadcast/a1X2bEnP82z/group1"
        );
        assert_eq!(
            thing.broadcast_topic("#").unwrap_err(),
            ThingError::InvalidInput
        );
    }

    #[test]
    fn scanner() {
        let j = br#" { "a" : "x\"}" , "b":[1,{"c":"]"}], "params" : {"k":true} } "#;
        assert_eq!(member(j, "params").unwrap(), Some(&br#"{"k":true}"#[..]));
        assert_eq!(member(j, "b").unwrap(), Some(&br#"[1,{"c":"]"}]"#[..]));
        assert_eq!(member(j, "a").unwrap(), Some(&br#""x\"}""#[..]));
        assert_eq!(member(j, "z").unwrap(), None);
        assert_eq!(member(b"{}", "z").unwrap(), None);
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert!(check_value(deep.as_bytes()).is_err());
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(check_value(ok.as_bytes()).is_ok());
    }
}

#[cfg(test)]
mod rrpc_topic_tests {
    extern crate std;
    use super::*;

    fn thing() -> Thing<'static, 2> {
        Thing::new(Device::new("a1X2bEnP82z", "example1").unwrap())
    }

    // A synchronous service call arrives over RRPC and is answered on its own topic, in time.
    #[test]
    fn sync_service_call() {
        let thing = thing();
        let topic =
            "/ext/rrpc/1186432000921341440/sys/a1X2bEnP82z/example1/thing/service/SetWeight";
        let r = thing
            .handle(
                topic,
                br#"{"id":"125","version":"1.0","params":{"Weight":3},"method":"thing.service.SetWeight"}"#,
            )
            .unwrap();
        let Some(Inbound::Service {
            identifier,
            request,
        }) = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(identifier, "SetWeight");
        assert!(matches!(
            &request.reply_to.target,
            ReplyTarget::SyncService { rrpc_id, identifier }
                if rrpc_id == "1186432000921341440" && identifier == "SetWeight"
        ));
        let mut buf = [0u8; 256];
        let m = thing
            .reply(
                &request.reply_to,
                CODE_OK,
                Some(br#"{"OldWeight":1}"#),
                &mut buf,
            )
            .unwrap();
        assert_eq!(m.topic(), topic);
        assert_eq!(
            m.payload(),
            br#"{"id":"125","code":200,"data":{"OldWeight":1}}"#
        );
        // Past the deadline the reply is refused.
        let strict =
            Thing::<'_, 1>::new(thing.device()).with_rrpc_deadline(Duration::from_ticks(0));
        let mut late = request.reply_to.clone();
        late.received_at = Instant::from_ticks(0);
        assert!(matches!(
            strict.reply(&late, CODE_OK, None, &mut buf),
            Err(ThingError::RrpcLate { .. })
        ));
    }

    // RRPC on a custom topic: the response goes to the request's topic.
    #[test]
    fn custom_topic_rrpc() {
        let thing = thing();
        let t0 = Instant::from_secs(50);
        let r = thing
            .handle_at("/ext/rrpc/42/a1X2bEnP82z/example1/user/get", b"q", t0)
            .unwrap();
        let Some(Inbound::Rrpc(req)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            req.ticket.custom_topic.as_deref(),
            Some("a1X2bEnP82z/example1/user/get")
        );
        assert_eq!(
            thing.rrpc_response(&req.ticket, t0).unwrap(),
            "/ext/rrpc/42/a1X2bEnP82z/example1/user/get"
        );
        for bad in ["/ext/rrpc/42", "/ext/rrpc//x", "/ext/rrpc/42/"] {
            assert_eq!(
                thing.handle(bad, b"").unwrap_err(),
                ThingError::Malformed,
                "{bad}"
            );
        }
    }
}

#[cfg(test)]
mod prop_tests {
    use super::*;
    use proptest::prelude::*;

    const TOPICS: [&str; 8] = [
        "/sys/pk/dn/thing/event/property/post_reply",
        "/sys/pk/dn/thing/event/Alarm/post_reply",
        "/sys/pk/dn/thing/service/property/set",
        "/sys/pk/dn/thing/service/Reboot",
        "/sys/pk/dn/rrpc/request/7",
        "/ext/rrpc/7/sys/pk/dn/thing/service/Reboot",
        "/ext/rrpc/7/pk/dn/user/get",
        "/broadcast/pk/x",
    ];

    proptest! {
        // Network input never panics, and whatever `handle` accepts as a request can be
        // answered with a well-formed reply.
        #[test]
        fn handle_never_panics(
            topic in 0usize..TOPICS.len(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            json in r#"\{"id":"[0-9]{1,12}","params":\{("[a-z]{1,5}":[0-9]{1,3},?){0,3}[ -~]{0,10}\}\}"#,
        ) {
            let thing: Thing<'_, 4> = Thing::new(Device::new("pk", "dn").unwrap());
            let mut buf = [0u8; 512];
            let _ = thing.property_post_json(b"{}", &mut buf);
            for p in [&payload[..], json.as_bytes()] {
                if let Ok(Some(Inbound::PropertySet(r) | Inbound::Service { request: r, .. })) =
                    thing.handle(TOPICS[topic], p)
                {
                    let m = thing.reply(&r.reply_to, 200, Some(r.params), &mut buf);
                    if let Ok(m) = m {
                        prop_assert!(check_object(m.payload()).is_ok());
                    }
                }
            }
            let _ = check_value(&payload);
            let _ = member(&payload, "params");
        }
    }
}
