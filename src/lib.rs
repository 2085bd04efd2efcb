#![no_std]
//! quectel (placeholder while the foundation is built)
