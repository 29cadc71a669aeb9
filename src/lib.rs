//! The `tahoe` node: command line, configuration and role wiring.
//!
//! This package is the composition root. It knows every built-in plugin
//! (each behind a cargo feature, on by default) and hands them to
//! `tahoe-core`'s registry; everything else lives in the libraries.

pub mod aliases;
pub mod cli;
pub mod daemon;
pub mod demo;
pub mod files;
pub mod node;
pub mod transfer;
pub mod web;

use tahoe_core::registry::Registry;

/// A registry holding every plugin compiled into this build.
///
/// Built-in names never clash, so registration cannot fail; a clash would be
/// a bug caught by the tests.
pub fn builtin_registry() -> tahoe_core::Result<Registry> {
    let mut r = Registry::new();
    #[cfg(feature = "crs")]
    tahoe_codec_crs::register(&mut r)?;
    #[cfg(feature = "reed-solomon")]
    tahoe_codec_reed_solomon::register(&mut r)?;
    #[cfg(feature = "leopard")]
    tahoe_codec_leopard::register(&mut r)?;
    #[cfg(feature = "aes-ctr")]
    tahoe_cipher_aes_ctr::register(&mut r)?;
    #[cfg(feature = "fs")]
    tahoe_storage_fs::register(&mut r)?;
    #[cfg(feature = "memory-storage")]
    tahoe_storage_memory::register(&mut r)?;
    #[cfg(feature = "s3")]
    tahoe_storage_s3::register(&mut r)?;
    #[cfg(feature = "memory-transport")]
    tahoe_transport_memory::register(&mut r)?;
    #[cfg(feature = "tarpc-tcp")]
    tahoe_transport_tarpc_tcp::register(&mut r)?;
    Ok(r)
}

/// The built-in plugins plus the shared libraries `config` loads
/// (`[plugins] load`): the registry a node runs with.
pub fn registry_for(config: &tahoe_core::config::NodeConfig) -> tahoe_core::Result<Registry> {
    let mut r = builtin_registry()?;
    r.load_libraries(config)?;
    Ok(r)
}
