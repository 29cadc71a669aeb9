//! A loaded library: its checks (entry symbol, ABI version, kind, table
//! size, name), buffers it lends, and the objects it makes.

#![allow(unsafe_code)] // calling into loaded libraries is this module's job

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tahoe_api::{
    Buf, CipherTable, CodecTable, EntryFn, Handle, PluginDescriptor, Slice, StorageTable,
};

use crate::error::{Error, Result};
use crate::plugin::registry::PluginKind;

/// Longest name or description accepted from a library.
pub(super) const MAX_TEXT: usize = 4096;

/// Longest error message kept from a library.
pub(super) const MAX_MESSAGE: usize = 4096;

/// A loaded library and its descriptor.
pub(super) struct Library {
    pub(super) path: PathBuf,
    pub(super) name: String,
    pub(super) kind: PluginKind,
    pub(super) desc: *const PluginDescriptor,
    pub(super) _lib: libloading::Library,
}

// SAFETY: the descriptor and its tables are immutable data of the library,
// which stays loaded as long as this value lives; tahoe-api requires the
// plugin's objects to be Send + Sync.
unsafe impl Send for Library {}

// SAFETY: as above.
unsafe impl Sync for Library {}

pub(super) fn refuse(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::plugin_incompatible(format!("plugin library {}: {what}", path.display()))
}

/// Text lent by a library's descriptor.
///
/// # Safety
/// `s` must point into the loaded library's static data.
pub(super) unsafe fn descriptor_text(path: &Path, s: Slice, what: &str) -> Result<String> {
    if s.len > MAX_TEXT || (s.len > 0 && s.ptr.is_null()) {
        return Err(refuse(path, format!("its {what} is malformed")));
    }
    // SAFETY: the caller's promise.
    let bytes = unsafe { s.as_bytes() };
    String::from_utf8(bytes.to_vec()).map_err(|_| refuse(path, format!("its {what} is not UTF-8")))
}

/// Why the file at `path` must not be loaded, if it must not: another
/// user could have put code in it (see the module docs).
pub(super) fn untrusted(path: &Path) -> Option<String> {
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
    pub(super) fn open(path: &Path) -> Result<Arc<Library>> {
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

    pub(super) fn descriptor(&self) -> &PluginDescriptor {
        // SAFETY: checked in open; lives as long as the library.
        unsafe { &*self.desc }
    }

    /// The kind's table.
    ///
    /// # Safety
    /// `T` must be the table of this library's kind.
    pub(super) unsafe fn table<T>(&self) -> &T {
        // SAFETY: the caller's promise; size checked in open.
        unsafe { &*(self.descriptor().table as *const T) }
    }

    /// Copy a buffer the library returned and give it back to be freed.
    pub(super) fn take(&self, b: Buf) -> Result<Vec<u8>> {
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
    pub(super) fn take_bytes(self: &Arc<Self>, b: Buf) -> Result<Bytes> {
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
    pub(super) fn label(&self) -> String {
        format!(
            "{} plugin `{}` ({})",
            self.kind,
            self.name,
            self.path.display()
        )
    }

    pub(super) fn garbage(&self, what: &str) -> Error {
        Error::corrupt(format!("{} returned {what}", self.label()))
    }

    /// Turn a call's status and error buffer into a result.
    pub(super) fn check(&self, status: i32, err: Buf) -> Result<()> {
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
    pub(super) fn call(&self, f: impl FnOnce(*mut Buf) -> i32) -> Result<()> {
        let mut err = Buf::EMPTY;
        let status = f(&mut err);
        self.check(status, err)
    }

    /// Call `f` with an output and an error buffer; the output's bytes.
    pub(super) fn call_buf(&self, f: impl FnOnce(*mut Buf, *mut Buf) -> i32) -> Result<Vec<u8>> {
        let mut out = Buf::EMPTY;
        self.call(|err| f(&mut out, err))?;
        self.take(out)
    }
}

/// Bytes owned by a library, given back to it when dropped.
pub(super) struct LibraryBuf {
    pub(super) lib: Arc<Library>,
    pub(super) buf: Option<Buf>,
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

/// A plugin object made by a library.
pub(super) struct Object {
    pub(super) lib: Arc<Library>,
    pub(super) handle: Handle,
}

// SAFETY: tahoe-api requires backends, codecs and ciphers to be Send +
// Sync on the plugin side.
unsafe impl Send for Object {}

// SAFETY: as above.
unsafe impl Sync for Object {}

pub(super) fn text_of(s: &str) -> Slice {
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
