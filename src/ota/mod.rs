//! Firmware updates over the air.
//!
//! - [`http`]: HTTP/1.1 range downloads over a modem TLS socket (Aliyun OTA's `https://` URLs).

pub mod http;
