//! A tahoe-api plugin compiled into the binary instead of loaded from a
//! shared library.
//!
//! A backend written against `tahoe_api::StorageBackend` is usually built
//! as a `cdylib` and named in `[plugins] load`. The same crate can also be
//! linked into a program (an rlib dependency) and registered here: no C
//! ABI in between, the trait's methods called directly. Everything else is
//! as for a loaded library, because it is the same adapter (`adapter`,
//! beside this module): calls run on tokio's blocking pool, the node
//! checks the bounds it promises plugins before a call (pending writes,
//! mutable sizes) and what comes back after it (read lengths, listings),
//! and errors keep the plugin's kind and message. A panic in a call is
//! caught by the blocking pool and becomes an `Internal` error. What is
//! left here is `Direct`: the trait's calls, the plugin's errors named,
//! and the vectors copied into the `Vec<u8>` the trait takes.
//!
//! Why it exists: a program that embeds the node can ship a backend
//! without a library file beside it (`examples/static-backend`), and the
//! benchmark of what the ABI costs compares a loaded library with the same
//! code linked in through this adapter (`cargo bench --bench grid --
//! --plugin`).

use std::sync::Arc;

use bytes::Bytes;

use super::adapter::{BlockingBackend, Pending, Store};
use crate::error::{Error, Result};
use crate::kinds::storage::{Lease, ShareInfo, ShareKind, StorageBackend, TestVector, WriteVector};
use crate::plugin::registry::{PluginKind, Registry};

/// Register `T` as the storage plugin `T::NAME`, opened with its
/// `[storage.NAME]` section as TOML text. Fails when the name is taken.
pub fn register_storage<T: tahoe_api::StorageBackend>(registry: &mut Registry) -> Result<()> {
    let label: Arc<str> = format!("{} plugin `{}`", PluginKind::Storage, T::NAME).into();
    registry.add_storage(T::NAME, T::DESCRIPTION, move |ctx| {
        let config = ctx.config.to_toml()?;
        let backend = T::open(&config, &ctx.basedir).map_err(|e| Error::from(e).context(&label))?;
        let store = Direct {
            backend,
            label: label.clone(),
        };
        Ok(
            Arc::new(BlockingBackend::new(T::NAME, label.clone(), store))
                as Arc<dyn StorageBackend>,
        )
    })
}

/// A linked plugin's backend, called directly.
struct Direct<T> {
    backend: T,
    /// "storage plugin `NAME`", prefixed to the plugin's error messages.
    label: Arc<str>,
}

impl<T> Direct<T> {
    fn error(&self, e: tahoe_api::Error) -> Error {
        Error::from(e).context(&self.label)
    }
}

impl<T: tahoe_api::StorageBackend> Store for Direct<T> {
    type Pending = DirectPending<T::Pending>;

    fn create(&self, si: &tahoe_api::StorageIndex, shnum: u8, size: u64) -> Result<Self::Pending> {
        let pending = self
            .backend
            .create(si, shnum, size)
            .map_err(|e| self.error(e))?;
        Ok(DirectPending {
            pending,
            label: self.label.clone(),
        })
    }

    fn read(
        &self,
        si: &tahoe_api::StorageIndex,
        shnum: u8,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.backend
            .read(si, shnum, kind, offset, len)
            .map(Bytes::from)
            .map_err(|e| self.error(e))
    }

    fn list(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<ShareInfo>> {
        self.backend.list(si).map_err(|e| self.error(e))
    }

    fn delete(&self, si: &tahoe_api::StorageIndex, shnum: u8) -> Result<()> {
        self.backend.delete(si, shnum).map_err(|e| self.error(e))
    }

    fn remaining_capacity(&self) -> Result<Option<u64>> {
        self.backend.remaining_capacity().map_err(|e| self.error(e))
    }

    fn test_and_write(
        &self,
        si: &tahoe_api::StorageIndex,
        shnum: u8,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        // The trait takes `Vec<u8>` vectors: the one copy of the data
        // between the node and a linked plugin.
        let tests: Vec<tahoe_api::TestVector> = tests
            .iter()
            .map(|t| tahoe_api::TestVector {
                offset: t.offset,
                length: t.length,
                expected: t.expected.to_vec(),
            })
            .collect();
        let writes: Vec<tahoe_api::WriteVector> = writes
            .iter()
            .map(|w| tahoe_api::WriteVector {
                offset: w.offset,
                data: w.data.to_vec(),
            })
            .collect();
        self.backend
            .test_and_write(si, shnum, &tests, &writes, new_length)
            .map_err(|e| self.error(e))
    }

    fn add_lease(&self, si: &tahoe_api::StorageIndex, lease: &Lease) -> Result<()> {
        self.backend.add_lease(si, lease).map_err(|e| self.error(e))
    }

    fn leases(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<Lease>> {
        self.backend.leases(si).map_err(|e| self.error(e))
    }

    fn storage_indexes(
        &self,
        after: Option<&tahoe_api::StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<tahoe_api::StorageIndex>>> {
        self.backend
            .storage_indexes(after, limit)
            .map_err(|e| self.error(e))
    }
}

/// A pending share of a linked plugin.
struct DirectPending<P> {
    pending: P,
    label: Arc<str>,
}

impl<P: tahoe_api::PendingShare> Pending for DirectPending<P> {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.pending
            .write(offset, data)
            .map_err(|e| Error::from(e).context(&self.label))
    }

    fn finish(self, seal: bool) -> Result<()> {
        let DirectPending { pending, label } = self;
        let done = if seal {
            pending.seal()
        } else {
            pending.abort()
        };
        done.map_err(|e| Error::from(e).context(&label))
    }
}
