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
pub mod linked;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tahoe_api::{
    Buf, CipherTable, CodecTable, EntryFn, Handle, PluginDescriptor, Slice, StorageTable, wire,
};

use crate::error::{Error, Result};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::{Block, Codec, CodecParams};
use crate::kinds::storage::{Lease, ShareInfo, ShareKind, StorageBackend, TestVector, WriteVector};
use crate::plugin::registry::{PluginContext, PluginKind, Registry};

/// Longest name or description accepted from a library.
const MAX_TEXT: usize = 4096;
/// Longest error message kept from a library.
const MAX_MESSAGE: usize = 4096;

/// A loaded library and its descriptor.
struct Library {
    path: PathBuf,
    name: String,
    kind: PluginKind,
    desc: *const PluginDescriptor,
    _lib: libloading::Library,
}

// SAFETY: the descriptor and its tables are immutable data of the library,
// which stays loaded as long as this value lives; tahoe-api requires the
// plugin's objects to be Send + Sync.
unsafe impl Send for Library {}
// SAFETY: as above.
unsafe impl Sync for Library {}

fn refuse(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::plugin_incompatible(format!("plugin library {}: {what}", path.display()))
}

/// Text lent by a library's descriptor.
///
/// # Safety
/// `s` must point into the loaded library's static data.
unsafe fn descriptor_text(path: &Path, s: Slice, what: &str) -> Result<String> {
    if s.len > MAX_TEXT || (s.len > 0 && s.ptr.is_null()) {
        return Err(refuse(path, format!("its {what} is malformed")));
    }
    // SAFETY: the caller's promise.
    let bytes = unsafe { s.as_bytes() };
    String::from_utf8(bytes.to_vec()).map_err(|_| refuse(path, format!("its {what} is not UTF-8")))
}

/// Why the file at `path` must not be loaded, if it must not: another
/// user could have put code in it (see the module docs).
fn untrusted(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let file = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot be loaded: {e}")),
    };
    if !file.is_file() {
        return Some("is not a regular file".into());
    }
    let trusted_owner = |uid: u32| uid == me || uid == 0;
    if !trusted_owner(file.uid()) {
        return Some(format!(
            "belongs to user {}, neither this node's user nor root",
            file.uid()
        ));
    }
    if file.mode() & 0o022 != 0 {
        return Some(format!(
            "can be written by other users (mode {:o}), so it is not loaded: `chmod go-w` it",
            file.mode() & 0o7777
        ));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(Ok(d)) = dir.map(std::fs::metadata) {
        let sticky = d.mode() & 0o1000 != 0;
        if d.mode() & 0o022 != 0 && !(sticky && file.uid() == me) {
            return Some(format!(
                "is in {}, which other users can write to (mode {:o}), so it is not loaded",
                dir.map(|d| d.display().to_string()).unwrap_or_default(),
                d.mode() & 0o7777
            ));
        }
    }
    None
}

impl Library {
    fn open(path: &Path) -> Result<Arc<Library>> {
        if let Some(why) = untrusted(path) {
            return Err(refuse(path, why));
        }
        // SAFETY: loading runs the library's initialisers; the operator
        // named this file in `[plugins] load`, and only the node's user or
        // root can have written it (see the module docs).
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| refuse(path, format!("cannot be loaded: {e}")))?;
        // SAFETY: the symbol's type is fixed by tahoe-api.
        let entry: EntryFn = unsafe { lib.get::<EntryFn>(tahoe_api::ENTRY_SYMBOL.as_bytes()) }
            .map(|s| *s)
            .map_err(|_| {
                refuse(
                    path,
                    format!(
                        "has no `{}` symbol, so it is not a tahoe plugin (a plugin exports one \
                         with tahoe_api::export_storage_backend!, export_codec! or export_cipher!)",
                        tahoe_api::ENTRY_SYMBOL
                    ),
                )
            })?;
        // SAFETY: the entry point takes nothing and returns a pointer.
        let desc = unsafe { entry() };
        if desc.is_null() {
            return Err(refuse(path, "its entry point returned no descriptor"));
        }
        // The version is the first field in every ABI version: read it
        // alone before trusting the rest of the layout.
        // SAFETY: a non-null descriptor starts with a u32.
        let version = unsafe { *(desc as *const u32) };
        if !tahoe_api::is_compatible(version) {
            return Err(refuse(
                path,
                format!(
                    "was built for plugin ABI version {version}; this node speaks version {}: \
                     rebuild it against tahoe-api {}",
                    tahoe_api::ABI_VERSION,
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        // SAFETY: same ABI version, so the layout is ours.
        let d = unsafe { &*desc };
        // SAFETY: descriptor text points into the library.
        let name = unsafe { descriptor_text(path, d.name, "name") }?;
        let kind = match tahoe_api::PluginKind::from_code(d.kind) {
            Some(k) => k,
            None => {
                return Err(refuse(
                    path,
                    format!(
                        "offers `{name}`, a plugin of unknown kind {}; expected a storage \
                         backend, a codec or a cipher",
                        d.kind
                    ),
                ));
            }
        };
        if d.table_size != kind.table_size() || d.table.is_null() {
            return Err(refuse(
                path,
                format!(
                    "offers {} plugin `{name}` with a function table of {} bytes; this node's \
                     {} table is {} bytes (a tahoe-api of another build?)",
                    kind.name(),
                    d.table_size,
                    kind.name(),
                    kind.table_size()
                ),
            ));
        }
        let kind = match kind {
            tahoe_api::PluginKind::Storage => PluginKind::Storage,
            tahoe_api::PluginKind::Codec => PluginKind::Codec,
            tahoe_api::PluginKind::Cipher => PluginKind::Cipher,
        };
        Ok(Arc::new(Library {
            path: path.to_path_buf(),
            name,
            kind,
            desc,
            _lib: lib,
        }))
    }

    fn descriptor(&self) -> &PluginDescriptor {
        // SAFETY: checked in open; lives as long as the library.
        unsafe { &*self.desc }
    }

    /// The kind's table.
    ///
    /// # Safety
    /// `T` must be the table of this library's kind.
    unsafe fn table<T>(&self) -> &T {
        // SAFETY: the caller's promise; size checked in open.
        unsafe { &*(self.descriptor().table as *const T) }
    }

    /// Copy a buffer the library returned and give it back to be freed.
    fn take(&self, b: Buf) -> Result<Vec<u8>> {
        if b.ptr.is_null() {
            return if b.len == 0 {
                Ok(Vec::new())
            } else {
                Err(self.garbage("a null buffer with a length"))
            };
        }
        if b.len > b.cap {
            // Not a buffer the library could have made: do not hand it
            // back to be freed (that would be undefined), leak it.
            return Err(self.garbage("a buffer longer than its allocation"));
        }
        // SAFETY: the library lends `len` initialised bytes until freed.
        let v = unsafe { std::slice::from_raw_parts(b.ptr, b.len) }.to_vec();
        // SAFETY: a buffer this library made, freed once.
        unsafe { (self.descriptor().free_buf)(b) };
        Ok(v)
    }

    /// A buffer the library returned, as `Bytes` without a copy: freed
    /// through the library when the last reference goes.
    fn take_bytes(self: &Arc<Self>, b: Buf) -> Result<Bytes> {
        if b.ptr.is_null() || b.len == 0 {
            return self.take(b).map(Bytes::from);
        }
        if b.len > b.cap {
            return Err(self.garbage("a buffer longer than its allocation"));
        }
        Ok(Bytes::from_owner(LibraryBuf {
            lib: self.clone(),
            buf: Some(b),
        }))
    }

    /// How the node's own errors about this library's plugin name it.
    fn label(&self) -> String {
        format!(
            "{} plugin `{}` ({})",
            self.kind,
            self.name,
            self.path.display()
        )
    }

    fn garbage(&self, what: &str) -> Error {
        Error::corrupt(format!("{} returned {what}", self.label()))
    }

    /// Turn a call's status and error buffer into a result.
    fn check(&self, status: i32, err: Buf) -> Result<()> {
        let message = self.take(err)?;
        if status == 0 {
            return Ok(());
        }
        let mut message = String::from_utf8_lossy(&message).into_owned();
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let kind = tahoe_api::ErrorKind::from_code(status).into();
        Err(Error::new(
            kind,
            format!("{} plugin `{}`: {message}", self.kind, self.name),
        ))
    }

    /// Call `f` with an error buffer, then check the status.
    fn call(&self, f: impl FnOnce(*mut Buf) -> i32) -> Result<()> {
        let mut err = Buf::EMPTY;
        let status = f(&mut err);
        self.check(status, err)
    }

    /// Call `f` with an output and an error buffer; the output's bytes.
    fn call_buf(&self, f: impl FnOnce(*mut Buf, *mut Buf) -> i32) -> Result<Vec<u8>> {
        let mut out = Buf::EMPTY;
        self.call(|err| f(&mut out, err))?;
        self.take(out)
    }
}

/// Bytes owned by a library, given back to it when dropped.
struct LibraryBuf {
    lib: Arc<Library>,
    buf: Option<Buf>,
}

// SAFETY: the buffer is plain memory the library lent to the node until
// freed; nothing else refers to it.
unsafe impl Send for LibraryBuf {}
// SAFETY: as above; only read.
unsafe impl Sync for LibraryBuf {}

impl AsRef<[u8]> for LibraryBuf {
    fn as_ref(&self) -> &[u8] {
        match &self.buf {
            // SAFETY: checked non-null with len <= cap in take_bytes; the
            // library keeps it until free_buf.
            Some(b) => unsafe { std::slice::from_raw_parts(b.ptr, b.len) },
            None => &[],
        }
    }
}

impl Drop for LibraryBuf {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            // SAFETY: a buffer this library made, freed once.
            unsafe { (self.lib.descriptor().free_buf)(b) };
        }
    }
}

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

/// A plugin object made by a library.
struct Object {
    lib: Arc<Library>,
    handle: Handle,
}

// SAFETY: tahoe-api requires backends, codecs and ciphers to be Send +
// Sync on the plugin side.
unsafe impl Send for Object {}
// SAFETY: as above.
unsafe impl Sync for Object {}

fn text_of(s: &str) -> Slice {
    Slice::of(s.as_bytes())
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: the kind's table; each handle is released once.
        unsafe {
            match self.lib.kind {
                PluginKind::Storage => (self.lib.table::<StorageTable>().close)(self.handle),
                PluginKind::Codec => (self.lib.table::<CodecTable>().drop)(self.handle),
                PluginKind::Cipher => (self.lib.table::<CipherTable>().drop)(self.handle),
                PluginKind::Transport => {}
            }
        }
    }
}

// ----------------------------------------------------------------- storage

// A library's storage backend is `adapter::BlockingBackend` over these
// two: they make the table's calls and check what crosses the C ABI
// (handles, buffers, records); the adapter does everything else, as for a
// linked plugin.

/// A storage backend opened by a library.
struct AbiStore(Arc<Object>);

impl AbiStore {
    fn open(lib: Arc<Library>, ctx: &PluginContext) -> Result<Self> {
        let config = ctx.config.to_toml()?;
        let basedir = ctx.basedir.to_string_lossy().into_owned();
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: a storage library's table; slices live across the call.
        let t = unsafe { lib.table::<StorageTable>() };
        lib.call(|err| unsafe { (t.open)(text_of(&config), text_of(&basedir), &mut handle, err) })?;
        if handle.is_null() {
            return Err(lib.garbage("no backend"));
        }
        Ok(AbiStore(Arc::new(Object { lib, handle })))
    }

    /// The library and its table.
    fn parts(&self) -> (&Object, &StorageTable) {
        // SAFETY: only storage libraries make an AbiStore.
        (&self.0, unsafe { self.0.lib.table::<StorageTable>() })
    }
}

impl adapter::Store for AbiStore {
    type Pending = AbiPending;

    fn create(&self, si: &tahoe_api::StorageIndex, shnum: u8, size: u64) -> Result<AbiPending> {
        let (o, t) = self.parts();
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.create)(o.handle, si, shnum, size, &mut h, err) })?;
        if h.is_null() {
            return Err(o.lib.garbage("no pending share"));
        }
        Ok(AbiPending {
            backend: self.0.clone(),
            handle: h,
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
        let (o, t) = self.parts();
        let mut out = Buf::EMPTY;
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib.call(|err| unsafe {
            (t.read)(o.handle, si, shnum, kind.code(), offset, len, &mut out, err)
        })?;
        // Kept in the library's buffer, not copied.
        o.lib.take_bytes(out)
    }

    fn list(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<ShareInfo>> {
        let (o, t) = self.parts();
        // SAFETY: a live backend handle; pointers valid for the call.
        let raw = o
            .lib
            .call_buf(|out, err| unsafe { (t.list)(o.handle, si, out, err) })?;
        wire::decode_share_infos(&raw).map_err(|_| o.lib.garbage("malformed share records"))
    }

    fn delete(&self, si: &tahoe_api::StorageIndex, shnum: u8) -> Result<()> {
        let (o, t) = self.parts();
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.delete)(o.handle, si, shnum, err) })
    }

    fn remaining_capacity(&self) -> Result<Option<u64>> {
        let (o, t) = self.parts();
        let (mut bytes, mut known) = (0u64, 0u8);
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.remaining_capacity)(o.handle, &mut bytes, &mut known, err) })?;
        Ok((known == 1).then_some(bytes))
    }

    fn test_and_write(
        &self,
        si: &tahoe_api::StorageIndex,
        shnum: u8,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        let (o, t) = self.parts();
        let (tests, writes) = (wire::encode_tests(tests), wire::encode_writes(writes));
        let mut ok = 0u8;
        o.lib.call(|err| {
            // SAFETY: a live backend handle; pointers valid for the call.
            unsafe {
                (t.test_and_write)(
                    o.handle,
                    si,
                    shnum,
                    Slice::of(&tests),
                    Slice::of(&writes),
                    new_length.unwrap_or(0),
                    u8::from(new_length.is_some()),
                    &mut ok,
                    err,
                )
            }
        })?;
        Ok(ok == 1)
    }

    fn add_lease(&self, si: &tahoe_api::StorageIndex, lease: &Lease) -> Result<()> {
        let (o, t) = self.parts();
        let record = wire::encode_leases(std::slice::from_ref(lease));
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.add_lease)(o.handle, si, Slice::of(&record), err) })
    }

    fn leases(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<Lease>> {
        let (o, t) = self.parts();
        // SAFETY: a live backend handle; pointers valid for the call.
        let raw = o
            .lib
            .call_buf(|out, err| unsafe { (t.leases)(o.handle, si, out, err) })?;
        wire::decode_leases(&raw).map_err(|_| o.lib.garbage("malformed lease records"))
    }
}

/// A pending share of a library: its handle, and the backend it came from
/// (kept open while the handle lives).
struct AbiPending {
    backend: Arc<Object>,
    handle: Handle,
}

// SAFETY: tahoe-api requires pending shares to be Send; the adapter uses
// the handle from one thread at a time.
unsafe impl Send for AbiPending {}

impl adapter::Pending for AbiPending {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        // SAFETY: a storage library.
        let t = unsafe { self.backend.lib.table::<StorageTable>() };
        // SAFETY: a live pending handle, used by one thread at a time.
        self.backend
            .lib
            .call(|err| unsafe { (t.pending_write)(self.handle, offset, Slice::of(data), err) })
    }

    fn finish(self, seal: bool) -> Result<()> {
        // SAFETY: a storage library.
        let t = unsafe { self.backend.lib.table::<StorageTable>() };
        // SAFETY: the handle is consumed once, here (`self` goes with it).
        self.backend.lib.call(|err| unsafe {
            if seal {
                (t.pending_seal)(self.handle, err)
            } else {
                (t.pending_abort)(self.handle, err)
            }
        })
    }
}

// ------------------------------------------------------------------- codec

/// A codec from a library.
struct LoadedCodec {
    obj: Object,
    params: CodecParams,
}

impl LoadedCodec {
    fn new(lib: Arc<Library>, params: CodecParams, ctx: &PluginContext) -> Result<Self> {
        let config = ctx.config.to_toml()?;
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: a codec library's table; the slice lives across the call.
        let t = unsafe { lib.table::<CodecTable>() };
        lib.call(|err| unsafe { (t.new)(params.k, params.n, text_of(&config), &mut handle, err) })?;
        if handle.is_null() {
            return Err(lib.garbage("no codec"));
        }
        Ok(LoadedCodec {
            obj: Object { lib, handle },
            params,
        })
    }

    fn table(&self) -> &CodecTable {
        // SAFETY: a codec library.
        unsafe { self.obj.lib.table::<CodecTable>() }
    }

    /// The library's block length, or an error when it is not a sane one
    /// (at least `data_len / k`, at most twice that plus 4 KiB).
    fn checked_block_len(&self, data_len: usize) -> Result<usize> {
        // SAFETY: a live codec handle.
        let len = unsafe { (self.table().block_len)(self.obj.handle, data_len) };
        let least = data_len / self.params.k();
        if len < least || len > least.saturating_mul(2).saturating_add(4096) {
            return Err(self
                .obj
                .lib
                .garbage(&format!("a block length of {len} for {data_len} bytes")));
        }
        Ok(len)
    }
}

impl Codec for LoadedCodec {
    fn name(&self) -> &str {
        &self.obj.lib.name
    }

    fn params(&self) -> CodecParams {
        self.params
    }

    fn block_len(&self, data_len: usize) -> usize {
        // A codec that cannot say is given the unpadded length; its encode
        // and decode then fail the length checks below.
        self.checked_block_len(data_len)
            .unwrap_or_else(|_| data_len.div_ceil(self.params.k()))
    }

    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        // The contract's argument checks are the node's, for every codec
        // a library brings.
        if data.is_empty() || !data.len().is_multiple_of(self.params.k()) {
            return Err(Error::invalid_input(format!(
                "a segment of {} bytes cannot be encoded {}-of-{}: it must be a non-zero multiple of k",
                data.len(),
                self.params.k,
                self.params.n
            )));
        }
        let block = self.checked_block_len(data.len())?;
        let out = self.obj.lib.call_buf(|out, err| {
            // SAFETY: a live codec handle; the slice lives across the call.
            unsafe { (self.table().encode)(self.obj.handle, Slice::of(data), out, err) }
        })?;
        if out.len() != block * self.params.n() {
            return Err(self.obj.lib.garbage(&format!(
                "{} bytes of blocks, not {} blocks of {block}",
                out.len(),
                self.params.n
            )));
        }
        Ok(out.chunks_exact(block.max(1)).map(<[u8]>::to_vec).collect())
    }

    fn decode(&self, blocks: &[Block<'_>], data_len: usize) -> Result<Vec<u8>> {
        let block = self.checked_block_len(data_len)?;
        let blocks = crate::kinds::codec::select_decode_blocks(self.params, blocks, block)?;
        let indices: Vec<u32> = blocks.iter().map(|b| b.index as u32).collect();
        let slices: Vec<Slice> = blocks.iter().map(|b| Slice::of(b.data)).collect();
        let out = self.obj.lib.call_buf(|out, err| {
            // SAFETY: a live codec handle; the arrays live across the call.
            unsafe {
                (self.table().decode)(
                    self.obj.handle,
                    indices.as_ptr(),
                    slices.as_ptr(),
                    slices.len(),
                    data_len,
                    out,
                    err,
                )
            }
        })?;
        if out.len() != data_len {
            return Err(self
                .obj
                .lib
                .garbage(&format!("{} bytes decoded, not {data_len}", out.len())));
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------ cipher

/// A cipher from a library.
struct LoadedCipher {
    obj: Object,
    key_len: usize,
}

impl LoadedCipher {
    fn new(lib: Arc<Library>, ctx: &PluginContext) -> Result<Self> {
        let config = ctx.config.to_toml()?;
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: a cipher library's table; the slice lives across the call.
        let t = unsafe { lib.table::<CipherTable>() };
        lib.call(|err| unsafe { (t.new)(text_of(&config), &mut handle, err) })?;
        if handle.is_null() {
            return Err(lib.garbage("no cipher"));
        }
        // SAFETY: a live cipher handle.
        let key_len = unsafe { (t.key_len)(handle) };
        let obj = Object { lib, handle };
        if key_len == 0 || key_len > 1024 {
            return Err(obj.lib.garbage(&format!("a key length of {key_len}")));
        }
        Ok(LoadedCipher { obj, key_len })
    }
}

impl Cipher for LoadedCipher {
    fn name(&self) -> &str {
        &self.obj.lib.name
    }

    fn key_len(&self) -> usize {
        self.key_len
    }

    fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()> {
        crate::kinds::cipher::check_key_len(self, key)?;
        // SAFETY: a cipher library.
        let t = unsafe { self.obj.lib.table::<CipherTable>() };
        self.obj.lib.call(|err| {
            // SAFETY: a live cipher handle; key and data live across the call.
            unsafe {
                (t.apply_keystream)(
                    self.obj.handle,
                    Slice::of(key),
                    offset,
                    data.as_mut_ptr(),
                    data.len(),
                    err,
                )
            }
        })
    }
}
