//! The shared-library plugin loader: `[plugins] load = ["libfoo.so"]`.
//!
//! A library is checked before anything of it is used: its entry symbol
//! ([`tahoe_api::ENTRY_SYMBOL`]), its ABI version, its plugin kind, the
//! size of its function table, a name that is valid and clashes with no
//! plugin already registered (built in, or from an earlier library). Each
//! refusal is a `PluginIncompatible` error naming the file, what it offers
//! and what was expected. A library that passes is registered next to the
//! built-ins, so `[storage] backend = "NAME"` selects it and
//! `[storage.NAME]` configures it (handed over as TOML text).
//!
//! Calls cross the C ABI of `tahoe-api`. Storage calls block, so they run
//! on tokio's blocking pool; codec and cipher calls are made from the
//! pipelines' worker threads already. What comes back is checked (buffer
//! lengths, record shapes, block sizes): a plugin that returns garbage
//! gets a `Corrupt` error, never a panic or wrong bytes in the node. A
//! panic inside a plugin is caught by the export macros on its side and
//! arrives as an `Internal` error. Libraries stay loaded for the life of
//! the process: every object made from one holds it.
//!
//! A library is code the node runs, with all of the node's authority:
//! loading one runs its initialisers (ELF constructors) before any of the
//! checks above can look at it. So only a file the node's own user (or
//! root) owns, that no other user can write, in a directory no other user
//! can write (unless it is sticky, like `/tmp`, and the file is ours), is
//! loaded at all; a relative path is taken from the base directory, never
//! searched for along the system's library path.
//!
//! [`linked`] registers a tahoe-api plugin compiled into the binary
//! instead: the same traits, called directly. A storage plugin of either
//! kind is the node's backend through one adapter (`adapter`), which
//! holds every check and the hop to the blocking pool; what is left here
//! for storage is the table's calls (`AbiStore`, `AbiPending`).

#![allow(unsafe_code)] // calling into loaded libraries is this module's job

mod adapter;
mod cipher;
mod codec;
mod library;
pub mod linked;
mod storage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::Codec;
use crate::kinds::storage::StorageBackend;
use crate::plugin::registry::{PluginContext, PluginKind, Registry};

use self::cipher::LoadedCipher;
use self::codec::LoadedCodec;
use self::library::{Library, descriptor_text, refuse};
use self::storage::AbiStore;

/// Load the library at `path` (relative paths from `basedir`) and
/// register its plugin in `registry`; the plugin's kind and name.
pub fn load(registry: &mut Registry, path: &Path, basedir: &Path) -> Result<(PluginKind, String)> {
    let path = if path.is_relative() {
        basedir.join(path)
    } else {
        path.to_path_buf()
    };
    let lib = Library::open(&path)?;
    // SAFETY: descriptor text points into the library.
    let description =
        unsafe { descriptor_text(&path, lib.descriptor().description, "description") }?;
    let name = lib.name.clone();
    let added = match lib.kind {
        PluginKind::Storage => {
            let lib = lib.clone();
            registry.add_storage(&name, &description, move |ctx| {
                let store = AbiStore::open(lib.clone(), ctx)?;
                Ok(
                    Arc::new(adapter::BlockingBackend::new(&lib.name, lib.label(), store))
                        as Arc<dyn StorageBackend>,
                )
            })
        }
        PluginKind::Codec => {
            let lib = lib.clone();
            registry.add_codec(&name, &description, move |params, ctx| {
                Ok(Arc::new(LoadedCodec::new(lib.clone(), params, ctx)?) as Arc<dyn Codec>)
            })
        }
        PluginKind::Cipher => {
            let lib = lib.clone();
            registry.add_cipher(&name, &description, move |ctx| {
                Ok(Arc::new(LoadedCipher::new(lib.clone(), ctx)?) as Arc<dyn Cipher>)
            })
        }
        PluginKind::Transport => unreachable!("libraries offer no transports"),
    };
    added.map_err(|e| {
        refuse(
            &path,
            format!(
                "offers {} plugin `{name}`, which cannot be registered: {e} (built in or by \
                 an earlier library)",
                lib.kind
            ),
        )
    })?;
    registry.set_origin(lib.kind, &name, &path);
    Ok((lib.kind, name))
}

/// The storage backend of the library at `path`, configured by `section`
/// (the body of its `[storage.NAME]` table, TOML) in `basedir`: how a
/// plugin's own tests run the conformance suite
/// (`tahoe_core::testing::storage`) against the built library.
pub fn open_storage(path: &Path, section: &str, basedir: &Path) -> Result<Arc<dyn StorageBackend>> {
    let mut registry = Registry::new();
    let (kind, name) = load(&mut registry, path, basedir)?;
    if kind != PluginKind::Storage {
        return Err(refuse(
            path,
            format!("offers {kind} plugin `{name}`, not a storage backend"),
        ));
    }
    let ctx = PluginContext {
        config: crate::plugin::config::PluginConfig::from_toml(&format!("storage.{name}"), section),
        basedir: basedir.to_path_buf(),
    };
    registry.storage(&name, &ctx)
}

/// Load every library a node's `[plugins] load` names, in order.
pub fn load_all(registry: &mut Registry, paths: &[PathBuf], basedir: &Path) -> Result<()> {
    for p in paths {
        load(registry, p, basedir)?;
    }
    Ok(())
}
