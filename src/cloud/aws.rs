//! AWS IoT Core helpers (work in progress).
