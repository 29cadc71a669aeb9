//! Announcements come from any member of the grid, through the queen:
//! they check out (signature, id, limits, the address pinning the key) or
//! are refused.
#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tahoe_core::protocol::Announcement;
use tahoe_core::protocol::announce::check;
use tahoe_transport_tarpc_tcp::{Identity, TarpcTcp, TarpcTcpConfig};

static TRANSPORT: LazyLock<TarpcTcp> = LazyLock::new(|| {
    TarpcTcp::new(
        Identity::ephemeral().expect("identity"),
        TarpcTcpConfig::default(),
    )
});

fuzz_target!(|data: &[u8]| {
    // Public key, signature, then the body.
    if data.len() < 96 {
        return;
    }
    let a = Announcement {
        public_key: Bytes::copy_from_slice(&data[..32]),
        signature: Bytes::copy_from_slice(&data[32..96]),
        body: Bytes::copy_from_slice(&data[96..]),
    };
    let _ = check(&a, &*TRANSPORT);
});
