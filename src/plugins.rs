//! The plugins this build offers: the built-ins (each behind a cargo
//! feature, on by default), those a program embedding the node links in,
//! and the shared libraries a node's configuration loads.

use std::sync::OnceLock;

use tahoe_core::plugin::registry::Registry;

/// What registers the plugins a program links in beyond this package's.
type Registration = fn(&mut Registry) -> tahoe_core::Result<()>;

static LINKED: OnceLock<Registration> = OnceLock::new();

/// Plugins compiled into a program that embeds the node: `register` adds
/// them (e.g. with `tahoe_core::plugin::loader::linked::register_storage`) to every
/// registry the node makes, next to the built-ins. Call it once, first
/// thing in `main`; false when plugins were linked already.
/// `examples/static-backend` is a `tahoe` binary made this way.
pub fn link_plugins(register: Registration) -> bool {
    LINKED.set(register).is_ok()
}

/// A registry holding every plugin compiled into this build: the built-ins
/// and those of [`link_plugins`].
///
/// Built-in names never clash, so registering them cannot fail; a clash
/// would be a bug caught by the tests. A linked plugin whose name is taken
/// is an error.
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
    if let Some(register) = LINKED.get() {
        register(&mut r)?;
    }
    Ok(r)
}

/// The built-in plugins plus the shared libraries `config` loads
/// (`[plugins] load`): the registry a node runs with.
pub fn registry_for(
    config: &tahoe_core::plugin::config::NodeConfig,
) -> tahoe_core::Result<Registry> {
    let mut r = builtin_registry()?;
    tahoe_core::plugin::loader::load_all(&mut r, &config.plugins.load, config.basedir())?;
    Ok(r)
}
