//! Tests of the WebSocket transport.

mod handshake;
