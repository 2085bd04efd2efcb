//! Cloud helpers: who the device is and how it proves it, on AWS IoT Core and Aliyun IoT.
//!
//! Both platforms know two schemes, and both are here:
//!
//! | | one device, one secret (一机一密) | one product, one secret (一型一密) |
//! |---|---|---|
//! | AWS IoT Core ([`aws`], feature `aws`) | an X.509 certificate and key per device | fleet provisioning by claim: a shared claim certificate obtains the device's own certificate on first connect |
//! | Aliyun IoT ([`aliyun`], feature `aliyun`) | ProductKey / DeviceName / DeviceSecret, signed MQTT password | dynamic registration: the ProductSecret obtains the DeviceSecret (or a device token) on first connect |
//!
//! Credentials obtained at run time go to a storage the application provides (flash, the
//! modem's file system, a secure element) through each module's store trait, so that the next
//! boot connects with them instead of registering again.
//!
//! Everything is `no_std` and heap-free: requests and responses are built and parsed in
//! caller-owned buffers, and a response that does not fit is an error
//! ([`CloudError::ResponseTooLarge`]), never a silent truncation. Secrets (private keys,
//! DeviceSecret, ProductSecret, tokens, signed passwords) never appear in `Debug` or `defmt`
//! output.

// The table above links both modules; each exists only with its feature.
#![cfg_attr(
    not(all(feature = "aws", feature = "aliyun")),
    allow(rustdoc::broken_intra_doc_links)
)]

use core::fmt;

use crate::Error;
use crate::mqtt::MqttError;

#[cfg(feature = "aliyun")]
pub mod aliyun;
#[cfg(feature = "aws")]
pub mod aws;

/// The cloud layer's error: the platform refused or answered badly, a buffer is too small, the
/// credential store failed, or the layer below failed ([`CloudError::Mqtt`],
/// [`CloudError::Modem`]).
///
/// `From<MqttError>` wraps an MQTT error as [`CloudError::Mqtt`], except a modem error inside
/// it ([`MqttError::Modem`]), which becomes [`CloudError::Modem`]; `From<Error>` (core) is
/// [`CloudError::Modem`]. So a lost link is `CloudError::Modem(_)` whichever layer saw it.
/// Holds no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CloudError {
    /// The modem, the data call or the socket failed (a core [`Error`]).
    Modem(Error),
    /// The MQTT session failed or refused a request (e.g. the broker rejected `CONNECT`).
    Mqtt(MqttError),
    /// A response (or a field of it) is larger than the buffer configured for it: `needed`
    /// bytes (or at least that many, when the size is only known to exceed the buffer) did not
    /// fit `capacity`. Nothing was truncated.
    ResponseTooLarge {
        /// Bytes the response (or field) needs, as far as known.
        needed: usize,
        /// Bytes the configured buffer holds.
        capacity: usize,
    },
    /// A request (CSR, JSON payload, client id, topic, …) does not fit its buffer.
    RequestTooLarge,
    /// The platform answered on a `rejected` topic (AWS) or with an error code: its HTTP-like
    /// status code (e.g. 400).
    Rejected {
        /// The status code the platform gave (0 if none).
        status: u16,
    },
    /// The response is not the JSON the platform documents (missing field, wrong type).
    InvalidResponse,
    /// No response arrived within the configured time.
    NoResponse,
    /// The application's credential store failed to load or save.
    Storage,
    /// An input value is not acceptable (empty DeviceName, a character the platform forbids, …).
    InvalidInput,
    /// Aliyun dynamic registration: the platform refused to register this device because it is
    /// already activated, and the store holds no DeviceSecret. Aliyun hands the secret out only
    /// once; reset the device in the console (`ResetThing`) or flash its DeviceSecret.
    AlreadyActivated,
    /// The platform refused the credentials (MQTT CONNACK "bad user name or password"): a wrong
    /// ProductSecret, DeviceSecret or device token, or a signature over the wrong content.
    BadCredentials,
    /// The server speaks at most TLS 1.2 (Aliyun IoT public instances) and the chosen TLS
    /// speaks only TLS 1.3 (TLS on the MCU, embedded-tls): use the modem's TLS
    /// (`Transport::ModemTls`) instead.
    TlsVersion,
    /// An over-the-air update failed (feature `ota`): the image, the flash, or the cloud's
    /// answers while downloading. [`OtaError::reason`](crate::ota::OtaError::reason) is what
    /// the job status reports.
    #[cfg(feature = "ota")]
    Ota(crate::ota::OtaError),
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudError::Modem(e) => write!(f, "{e}"),
            CloudError::Mqtt(e) => write!(f, "{e}"),
            CloudError::ResponseTooLarge { needed, capacity } => write!(
                f,
                "response needs {needed} bytes but the configured buffer holds {capacity}"
            ),
            CloudError::RequestTooLarge => f.write_str("request does not fit its buffer"),
            CloudError::Rejected { status } => {
                write!(f, "the platform rejected the request (status {status})")
            }
            CloudError::InvalidResponse => f.write_str("unexpected response from the platform"),
            CloudError::NoResponse => f.write_str("no response from the platform in time"),
            CloudError::Storage => f.write_str("credential storage failed"),
            CloudError::InvalidInput => f.write_str("invalid input"),
            CloudError::AlreadyActivated => f.write_str(
                "the device is already activated and no DeviceSecret is stored: \
                 the platform issues it only once (reset the device in the console)",
            ),
            CloudError::BadCredentials => f.write_str(
                "the platform refused the user name or password \
                 (wrong ProductSecret, DeviceSecret or device token, or a bad signature)",
            ),
            CloudError::TlsVersion => f.write_str(
                "the server speaks at most TLS 1.2 and TLS on the MCU only TLS 1.3: \
                 use the modem's TLS",
            ),
            #[cfg(feature = "ota")]
            CloudError::Ota(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for CloudError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CloudError::Modem(e) => Some(e),
            CloudError::Mqtt(e) => Some(e),
            #[cfg(feature = "ota")]
            CloudError::Ota(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for CloudError {
    fn from(e: Error) -> Self {
        CloudError::Modem(e)
    }
}

#[cfg(feature = "ota")]
impl From<crate::ota::OtaError> for CloudError {
    fn from(e: crate::ota::OtaError) -> Self {
        CloudError::Ota(e)
    }
}

impl From<MqttError> for CloudError {
    fn from(e: MqttError) -> Self {
        match e {
            MqttError::Modem(e) => CloudError::Modem(e),
            e => CloudError::Mqtt(e),
        }
    }
}

#[cfg(feature = "mcu-tls")]
impl From<crate::tls::TlsError> for CloudError {
    fn from(e: crate::tls::TlsError) -> Self {
        MqttError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn a_link_failure_reads_the_same_at_every_layer() {
        let link = Error::ConnectionClosed;
        assert_eq!(CloudError::from(link), CloudError::Modem(link));
        assert_eq!(
            CloudError::from(MqttError::Modem(link)),
            CloudError::Modem(link)
        );
        assert_eq!(
            CloudError::from(MqttError::Rejected(0x87)),
            CloudError::Mqtt(MqttError::Rejected(0x87))
        );
        let e = CloudError::Mqtt(MqttError::Rejected(0x87));
        let source = core::error::Error::source(&e).map(std::string::ToString::to_string);
        assert_eq!(source.as_deref(), Some("MQTT broker refused (reason 0x87)"));
    }

    #[cfg(feature = "mcu-tls")]
    #[test]
    fn tls_errors_keep_their_layer_and_a_socket_failure_is_the_modem() {
        use crate::tls::{TlsError, TlsFailure};
        let link = Error::ContextDeactivated;
        assert_eq!(
            CloudError::from(TlsError::Transport(link)),
            CloudError::Modem(link)
        );
        assert_eq!(
            MqttError::from(TlsError::Transport(link)),
            MqttError::Modem(link)
        );
        let cert = TlsError::Failure(TlsFailure::Certificate);
        assert_eq!(MqttError::from(cert), MqttError::Tls(cert));
        assert_eq!(
            CloudError::from(cert),
            CloudError::Mqtt(MqttError::Tls(cert))
        );
    }
}
