//! The plugin registry: name → factory, per plugin kind.
//!
//! Built-in plugin crates fill it through their `register` functions; the
//! shared-library loader will fill the same tables, so the rest of the
//! program never cares where a plugin came from. Lookups of unknown names
//! fail with the list of names that do exist, which is what a person editing
//! `tahoe.toml` needs to see.

use crate::error::{Error, Result};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::{Codec, CodecParams};
use crate::kinds::storage::StorageBackend;
use crate::plugin::config::{NodeConfig, PluginConfig};
use crate::protocol::transport::Transport;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The four plugin kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    /// Erasure codecs.
    Codec,
    /// Stream ciphers.
    Cipher,
    /// Storage backends.
    Storage,
    /// Transports.
    Transport,
}

impl PluginKind {
    /// Every kind, in display order.
    pub const ALL: [PluginKind; 4] = [
        PluginKind::Codec,
        PluginKind::Cipher,
        PluginKind::Storage,
        PluginKind::Transport,
    ];

    /// The kind's config section, also its name in messages.
    pub fn section(self) -> &'static str {
        match self {
            PluginKind::Codec => "codec",
            PluginKind::Cipher => "cipher",
            PluginKind::Storage => "storage",
            PluginKind::Transport => "transport",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.section())
    }
}

/// What a factory gets to build a plugin instance.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// The plugin's own section (`[KIND.NAME]`).
    pub config: PluginConfig,
    /// The node's base directory; relative paths resolve against it.
    pub basedir: PathBuf,
}

impl PluginContext {
    /// A context with an empty section, for building plugins in tests and
    /// tools without a node.
    pub fn empty(kind: PluginKind, name: &str, basedir: &Path) -> Self {
        PluginContext {
            config: PluginConfig::empty(&format!("{}.{name}", kind.section())),
            basedir: basedir.to_path_buf(),
        }
    }
}

/// Builds a codec for given parameters.
type CodecFactory = dyn Fn(CodecParams, &PluginContext) -> Result<Arc<dyn Codec>> + Send + Sync;
/// Builds a cipher.
type CipherFactory = dyn Fn(&PluginContext) -> Result<Arc<dyn Cipher>> + Send + Sync;
/// Builds a storage backend.
type StorageFactory = dyn Fn(&PluginContext) -> Result<Arc<dyn StorageBackend>> + Send + Sync;
/// Builds a transport.
type TransportFactory = dyn Fn(&PluginContext) -> Result<Arc<dyn Transport>> + Send + Sync;

struct Entry<F: ?Sized> {
    description: String,
    factory: Box<F>,
    /// The library it came from; `None` when built in.
    origin: Option<PathBuf>,
}

/// One kind's table; the same code serves all four kinds.
struct Table<F: ?Sized> {
    kind: PluginKind,
    entries: BTreeMap<String, Entry<F>>,
}

impl<F: ?Sized> Table<F> {
    fn new(kind: PluginKind) -> Self {
        Table {
            kind,
            entries: BTreeMap::new(),
        }
    }

    fn add(&mut self, name: &str, description: &str, factory: Box<F>) -> Result<()> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::invalid_input(format!(
                "{} plugin name {name:?} must be lowercase letters, digits and '-'",
                self.kind
            )));
        }
        if self.entries.contains_key(name) {
            return Err(Error::already_exists(format!(
                "a {} plugin named `{name}` is already registered",
                self.kind
            )));
        }
        self.entries.insert(
            name.to_string(),
            Entry {
                description: description.to_string(),
                factory,
                origin: None,
            },
        );
        Ok(())
    }

    fn get(&self, name: &str) -> Result<&F> {
        match self.entries.get(name) {
            Some(e) => Ok(&e.factory),
            None => Err(Error::config_invalid(format!(
                "unknown {} plugin `{name}`; known {} plugins: {}",
                self.kind,
                self.kind,
                self.names().join(", ")
            ))),
        }
    }

    fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }
}

/// A registered plugin, as listed by `tahoe plugins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its kind.
    pub kind: PluginKind,
    /// Its registry name.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// The shared library it was loaded from; `None` when built in.
    pub origin: Option<PathBuf>,
}

/// Name → factory tables for the four plugin kinds.
pub struct Registry {
    codecs: Table<CodecFactory>,
    ciphers: Table<CipherFactory>,
    storage: Table<StorageFactory>,
    transports: Table<TransportFactory>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// The plugin instances a node's configuration selects.
pub struct Selection {
    /// The codec, built for `[encoding]` k and n.
    pub codec: Arc<dyn Codec>,
    /// The cipher.
    pub cipher: Arc<dyn Cipher>,
    /// The storage backend, when `storage.enabled`.
    pub storage: Option<Arc<dyn StorageBackend>>,
    /// The transport.
    pub transport: Arc<dyn Transport>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry {
            codecs: Table::new(PluginKind::Codec),
            ciphers: Table::new(PluginKind::Cipher),
            storage: Table::new(PluginKind::Storage),
            transports: Table::new(PluginKind::Transport),
        }
    }

    /// Register a codec. Names are unique per kind.
    pub fn add_codec(
        &mut self,
        name: &str,
        description: &str,
        factory: impl Fn(CodecParams, &PluginContext) -> Result<Arc<dyn Codec>> + Send + Sync + 'static,
    ) -> Result<()> {
        self.codecs.add(name, description, Box::new(factory))
    }

    /// Register a cipher.
    pub fn add_cipher(
        &mut self,
        name: &str,
        description: &str,
        factory: impl Fn(&PluginContext) -> Result<Arc<dyn Cipher>> + Send + Sync + 'static,
    ) -> Result<()> {
        self.ciphers.add(name, description, Box::new(factory))
    }

    /// Register a storage backend.
    pub fn add_storage(
        &mut self,
        name: &str,
        description: &str,
        factory: impl Fn(&PluginContext) -> Result<Arc<dyn StorageBackend>> + Send + Sync + 'static,
    ) -> Result<()> {
        self.storage.add(name, description, Box::new(factory))
    }

    /// Register a transport.
    pub fn add_transport(
        &mut self,
        name: &str,
        description: &str,
        factory: impl Fn(&PluginContext) -> Result<Arc<dyn Transport>> + Send + Sync + 'static,
    ) -> Result<()> {
        self.transports.add(name, description, Box::new(factory))
    }

    /// Build codec `name` for `params`.
    pub fn codec(
        &self,
        name: &str,
        params: CodecParams,
        ctx: &PluginContext,
    ) -> Result<Arc<dyn Codec>> {
        (self.codecs.get(name)?)(params, ctx)
    }

    /// Build cipher `name`.
    pub fn cipher(&self, name: &str, ctx: &PluginContext) -> Result<Arc<dyn Cipher>> {
        (self.ciphers.get(name)?)(ctx)
    }

    /// Build storage backend `name`.
    pub fn storage(&self, name: &str, ctx: &PluginContext) -> Result<Arc<dyn StorageBackend>> {
        (self.storage.get(name)?)(ctx)
    }

    /// Build transport `name`.
    pub fn transport(&self, name: &str, ctx: &PluginContext) -> Result<Arc<dyn Transport>> {
        (self.transports.get(name)?)(ctx)
    }

    /// Record that plugin `name` of `kind` came from the library at `path`
    /// (the loader calls this after registering it).
    pub fn set_origin(&mut self, kind: PluginKind, name: &str, path: &Path) {
        fn set<F: ?Sized>(t: &mut Table<F>, name: &str, path: &Path) {
            if let Some(e) = t.entries.get_mut(name) {
                e.origin = Some(path.to_path_buf());
            }
        }
        match kind {
            PluginKind::Codec => set(&mut self.codecs, name, path),
            PluginKind::Cipher => set(&mut self.ciphers, name, path),
            PluginKind::Storage => set(&mut self.storage, name, path),
            PluginKind::Transport => set(&mut self.transports, name, path),
        }
    }

    /// The registered names of one kind, sorted.
    pub fn names(&self, kind: PluginKind) -> Vec<&str> {
        match kind {
            PluginKind::Codec => self.codecs.names(),
            PluginKind::Cipher => self.ciphers.names(),
            PluginKind::Storage => self.storage.names(),
            PluginKind::Transport => self.transports.names(),
        }
    }

    /// Every registered plugin, by kind then name.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        fn list<F: ?Sized>(t: &Table<F>) -> impl Iterator<Item = PluginInfo> + '_ {
            t.entries.iter().map(|(name, e)| PluginInfo {
                kind: t.kind,
                name: name.clone(),
                description: e.description.clone(),
                origin: e.origin.clone(),
            })
        }
        list(&self.codecs)
            .chain(list(&self.ciphers))
            .chain(list(&self.storage))
            .chain(list(&self.transports))
            .collect()
    }

    /// Check a node's plugin sections against this registry and build the
    /// plugins it selects.
    ///
    /// Every sub-table under `[codec]`, `[cipher]`, `[storage]` and
    /// `[transport]` must be named after a registered plugin of that kind,
    /// and every other key there is unknown: both are errors naming the key.
    pub fn select(&self, config: &NodeConfig) -> Result<Selection> {
        let own_keys: [(PluginKind, &[&str]); 4] = [
            (PluginKind::Codec, &["name"]),
            (PluginKind::Cipher, &["name"]),
            (
                PluginKind::Storage,
                &[
                    "enabled",
                    "backend",
                    "reserved_space",
                    "readonly",
                    "lease_duration",
                    "expire",
                    "crawler",
                ],
            ),
            (PluginKind::Transport, &["name", "listen", "advertise"]),
        ];
        for (kind, own) in own_keys {
            let section = kind.section();
            for (key, is_table) in config.plugin_sections(section) {
                let names = self.names(kind);
                if !is_table || !names.contains(&key.as_str()) {
                    return Err(Error::config_invalid(format!(
                        "unknown key `{section}.{key}`{}: allowed are {} and a sub-table per {kind} plugin ({})",
                        config.origin(&format!("{section}.{key}")),
                        own.join(", "),
                        names.join(", ")
                    )));
                }
            }
        }
        // Libraries are loaded into the registry before selection
        // (`loader::load_all`); one that is named but absent here means the
        // caller skipped that step, which would silently drop a plugin.
        let loaded: Vec<PathBuf> = self
            .plugins()
            .into_iter()
            .filter_map(|p| p.origin)
            .collect();
        for path in &config.plugins.load {
            let full = config.basedir().join(path);
            if !loaded.contains(&full) {
                return Err(Error::plugin_incompatible(format!(
                    "plugins.load{}: {} is not loaded in this registry (call \
                     tahoe_core::plugin::loader::load_all first)",
                    config.origin("plugins.load"),
                    path.display()
                )));
            }
        }
        // Unknown names are reported against the key that chose them.
        let choices = [
            (PluginKind::Codec, "name", config.codec.name.as_str()),
            (PluginKind::Cipher, "name", config.cipher.name.as_str()),
            (
                PluginKind::Storage,
                "backend",
                config.storage.backend.as_str(),
            ),
            (
                PluginKind::Transport,
                "name",
                config.transport.name.as_str(),
            ),
        ];
        for (kind, key, name) in choices {
            if kind == PluginKind::Storage && !config.storage.enabled {
                continue;
            }
            if !self.names(kind).contains(&name) {
                let key = format!("{}.{key}", kind.section());
                return Err(Error::config_invalid(format!(
                    "{key}{}: unknown {kind} plugin `{name}`; known {kind} plugins: {}",
                    config.origin(&key),
                    self.names(kind).join(", ")
                )));
            }
        }
        let ctx = |kind: PluginKind, name: &str| PluginContext {
            config: config.plugin_config(kind.section(), name),
            basedir: config.basedir().to_path_buf(),
        };
        let failed = |kind: PluginKind, name: &str| {
            let what = format!("{kind} plugin `{name}`");
            move |e: Error| e.context(what)
        };
        let e = &config.encoding;
        let params = CodecParams::new(e.k, e.n)?;
        let name = &config.codec.name;
        let codec = self
            .codec(name, params, &ctx(PluginKind::Codec, name))
            .map_err(failed(PluginKind::Codec, name))?;
        let name = &config.cipher.name;
        let cipher = self
            .cipher(name, &ctx(PluginKind::Cipher, name))
            .map_err(failed(PluginKind::Cipher, name))?;
        let storage = if config.storage.enabled {
            let name = &config.storage.backend;
            Some(
                self.storage(name, &ctx(PluginKind::Storage, name))
                    .map_err(failed(PluginKind::Storage, name))?,
            )
        } else {
            None
        };
        let name = &config.transport.name;
        let transport = self
            .transport(name, &ctx(PluginKind::Transport, name))
            .map_err(failed(PluginKind::Transport, name))?;
        Ok(Selection {
            codec,
            cipher,
            storage,
            transport,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Null;
    impl Cipher for Null {
        fn name(&self) -> &str {
            "null"
        }
        fn key_len(&self) -> usize {
            0
        }
        fn apply_keystream(&self, _: &[u8], _: u64, _: &mut [u8]) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn unknown_name_lists_known_ones() {
        let mut r = Registry::new();
        r.add_cipher("null", "does nothing", |_| {
            Ok(Arc::new(Null) as Arc<dyn Cipher>)
        })
        .unwrap();
        r.add_cipher("zero", "does nothing either", |_| {
            Ok(Arc::new(Null) as Arc<dyn Cipher>)
        })
        .unwrap();
        let ctx = PluginContext::empty(PluginKind::Cipher, "x", Path::new("."));
        let e = r.cipher("rot13", &ctx).err().unwrap();
        assert!(e.to_string().contains("null, zero"), "{e}");
        assert!(
            r.add_cipher("null", "", |_| Ok(Arc::new(Null) as Arc<dyn Cipher>))
                .is_err()
        );
        assert!(
            r.add_cipher("Bad Name", "", |_| Ok(Arc::new(Null) as Arc<dyn Cipher>))
                .is_err()
        );
        assert_eq!(r.plugins().len(), 2);
    }
}
