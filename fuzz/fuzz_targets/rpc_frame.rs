//! Every frame a peer sends a tarpc-tcp listener decodes into a request or
//! is refused, without panicking or allocating far beyond the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tahoe_transport_tarpc_tcp::decode_request_frame(data);
});
