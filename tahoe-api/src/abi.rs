//! The C-ABI types that cross the boundary, and the plugin side's helpers
//! for filling them safely.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{Error, ErrorKind, Result};

/// An opaque plugin object (a backend, a pending share, a codec, a
/// cipher), created and freed by the plugin's own functions.
pub type Handle = *mut c_void;

/// Bytes lent for the duration of one call; the callee must not keep the
/// pointer.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    /// The first byte (any non-null value when `len` is 0).
    pub ptr: *const u8,
    /// How many bytes.
    pub len: usize,
}

impl Slice {
    /// Lend `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Slice {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The bytes lent.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid and
    /// unchanged for `'a` (what a caller of an ABI function promises).
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the caller's promise above.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A buffer made by the plugin and handed to the node, which reads it and
/// gives it back through [`PluginDescriptor::free_buf`].
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    /// The bytes (null for an empty buffer).
    pub ptr: *mut u8,
    /// How many are filled.
    pub len: usize,
    /// How many were allocated (the plugin needs it to free them).
    pub cap: usize,
}

impl Buf {
    /// No buffer.
    pub const EMPTY: Buf = Buf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    /// Hand `v` over (the plugin side).
    pub fn from_vec(v: Vec<u8>) -> Self {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Take a buffer back and free it (the plugin side, in `free_buf`).
    ///
    /// # Safety
    /// `self` must come from [`Buf::from_vec`] in this same library, once.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the parts of a Vec<u8> leaked by from_vec.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }
}

/// What a library's entry point describes. The layout is fixed by
/// [`crate::ABI_VERSION`]; `abi_version` stays the first field in every
/// version.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// [`crate::ABI_VERSION`] of the `tahoe-api` the library was built with.
    pub abi_version: u32,
    /// A [`crate::PluginKind`] code.
    pub kind: u32,
    /// The registry name (UTF-8; lowercase letters, digits and '-').
    pub name: Slice,
    /// One line for people (UTF-8).
    pub description: Slice,
    /// `size_of` the table `table` points to; the node checks it against
    /// the kind's table.
    pub table_size: usize,
    /// The kind's function table ([`crate::StorageTable`] and so on).
    pub table: *const c_void,
    /// Frees a [`Buf`] the library returned.
    pub free_buf: unsafe extern "C" fn(Buf),
}

/// A descriptor made once and kept for the library's lifetime (the export
/// macros keep one in a static).
#[derive(Debug)]
pub struct StaticDescriptor(pub PluginDescriptor);

// SAFETY: a descriptor is written once, before it is shared, and only read
// afterwards; its pointers are to 'static data of the library.
unsafe impl Sync for StaticDescriptor {}
// SAFETY: as above.
unsafe impl Send for StaticDescriptor {}

impl StaticDescriptor {
    /// The pointer the entry point returns.
    pub fn as_ptr(&self) -> *const PluginDescriptor {
        &self.0
    }
}

/// `free_buf` of every library built with this crate.
pub(crate) unsafe extern "C" fn free_buf(b: Buf) {
    // SAFETY: the node gives back only buffers this library made, once.
    drop(unsafe { b.into_vec() });
}

/// A descriptor for `kind` with `table` (leaked: it lives as long as the
/// library).
pub(crate) fn descriptor<T>(
    kind: crate::PluginKind,
    name: &'static str,
    description: &'static str,
    table: T,
) -> PluginDescriptor {
    PluginDescriptor {
        abi_version: crate::ABI_VERSION,
        kind: kind as u32,
        name: Slice::of(name.as_bytes()),
        description: Slice::of(description.as_bytes()),
        table_size: std::mem::size_of::<T>(),
        table: Box::leak(Box::new(table)) as *const T as *const c_void,
        free_buf,
    }
}

/// Run one entry point's body: a panic becomes an `Internal` error, an
/// error is written to `err` as its message, and the status returned is
/// 0 or the error's kind code.
pub(crate) fn guard(err: *mut Buf, body: impl FnOnce() -> Result<()>) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        Err(Error::new(
            ErrorKind::Internal,
            format!("the plugin panicked: {what}"),
        ))
    });
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            if !err.is_null() {
                // SAFETY: the node passes a writable Buf for the message.
                unsafe { err.write(Buf::from_vec(e.message.into_bytes())) };
            }
            e.kind as i32
        }
    }
}

/// Write `value` to the out-pointer `out` (checked for null).
pub(crate) fn put<T>(out: *mut T, value: T) -> Result<()> {
    if out.is_null() {
        return Err(Error::new(ErrorKind::InvalidInput, "a null out-pointer"));
    }
    // SAFETY: the node passes a writable out-pointer.
    unsafe { out.write(value) };
    Ok(())
}

/// The UTF-8 text lent in `s`.
///
/// # Safety
/// As [`Slice::as_bytes`].
pub(crate) unsafe fn text<'a>(s: Slice, what: &str) -> Result<&'a str> {
    // SAFETY: the caller's promise.
    std::str::from_utf8(unsafe { s.as_bytes() })
        .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("{what} is not UTF-8")))
}

/// The object behind a handle made by `Box::into_raw`.
///
/// # Safety
/// `h` must be a live handle of type `T` made by this library.
pub(crate) unsafe fn object<'a, T>(h: Handle) -> Result<&'a T> {
    if h.is_null() {
        return Err(Error::new(ErrorKind::InvalidInput, "a null handle"));
    }
    // SAFETY: the caller's promise.
    Ok(unsafe { &*(h as *const T) })
}

/// A new handle owning `value`.
pub(crate) fn into_handle<T>(value: T) -> Handle {
    Box::into_raw(Box::new(value)) as Handle
}

/// Take back the value a handle owns.
///
/// # Safety
/// `h` must be a live handle of type `T`, not used again.
pub(crate) unsafe fn from_handle<T>(h: Handle) -> Result<T> {
    if h.is_null() {
        return Err(Error::new(ErrorKind::InvalidInput, "a null handle"));
    }
    // SAFETY: the caller's promise.
    Ok(*unsafe { Box::from_raw(h as *mut T) })
}
