//! Checked conversions of C arguments: pointers that must not be NULL, strings that must be
//! UTF-8, arrays given as pointer + length, and caller-owned output buffers.

use std::ffi::{c_char, CStr};

use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::status::{Failure, EMBER_ERR_BUFFER_TOO_SMALL, EMBER_ERR_BUSY, EMBER_ERR_NULL_POINTER};

/// Exclusive access to a handle's state for one call, or EMBER_ERR_BUSY while another thread
/// has it (a call never blocks). State left poisoned by a caught panic is passed through
/// `repair` (e.g. a reset) and reused.
pub(crate) fn exclusive<'a, T>(
    m: &'a Mutex<T>,
    what: &str,
    repair: impl FnOnce(&mut T),
) -> Result<MutexGuard<'a, T>, Failure> {
    match m.try_lock() {
        Ok(g) => Ok(g),
        Err(TryLockError::WouldBlock) => Err(Failure::new(
            EMBER_ERR_BUSY,
            format!("{what} is in use by another thread"),
        )),
        Err(TryLockError::Poisoned(p)) => {
            let mut g = p.into_inner();
            repair(&mut g);
            m.clear_poison();
            Ok(g)
        }
    }
}

pub(crate) fn null(name: &str) -> Failure {
    Failure::new(EMBER_ERR_NULL_POINTER, format!("`{name}` is NULL"))
}

/// `&T` from a pointer the caller promises is NULL or valid.
///
/// # Safety
/// `p` is NULL or points to a live, properly aligned `T` for the returned lifetime.
pub(crate) unsafe fn arg<'a, T>(p: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: non-NULL pointers are valid by the caller's contract (documented in the header).
    unsafe { p.as_ref() }.ok_or_else(|| null(name))
}

/// `&mut T` from a pointer the caller promises is NULL or valid and unaliased.
///
/// # Safety
/// `p` is NULL or points to a live, properly aligned `T` that nothing else accesses meanwhile.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: as for `arg`, plus exclusivity, which the caller promises.
    unsafe { p.as_mut() }.ok_or_else(|| null(name))
}

/// A NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that lives for the returned lifetime.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|e| Failure::invalid(format!("`{name}` is not valid UTF-8: {e}")))
}

/// A slice from pointer + length; NULL is accepted when `len` is 0.
///
/// # Safety
/// If `len > 0`, `p` points to `len` initialized, properly aligned `T`s that live for the
/// returned lifetime and are not written meanwhile.
pub(crate) unsafe fn slice_arg<'a, T>(
    p: *const T,
    len: usize,
    name: &str,
) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(name));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Failure::invalid(format!(
            "`{name}`: length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, `len` elements valid by the caller's contract; the size fits isize.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Check a caller-owned output array (pointer + capacity; NULL accepted when the capacity is
/// 0) that will receive `n` elements, and return the pointer to write through. The memory may be
/// uninitialized, so it is only ever written through raw pointers, never viewed as a slice.
fn out_ptr<T>(p: *mut T, cap: usize, n: usize, name: &str) -> Result<*mut T, Failure> {
    debug_assert!(n <= cap);
    if n > 0 && p.is_null() {
        return Err(null(name));
    }
    if p.is_null() && cap > 0 {
        return Err(null(name));
    }
    Ok(p)
}

/// Store `value` through an optional output pointer.
///
/// # Safety
/// `p` is NULL or points to a writable `T`.
pub(crate) unsafe fn set_opt<T>(p: *mut T, value: T) {
    // SAFETY: the caller's contract; NULL means "not wanted".
    if let Some(slot) = unsafe { p.as_mut() } {
        *slot = value;
    }
}

/// Copy `items` into a caller-owned array, llama.h style: the count needed is always stored in
/// `*n_out`; if it exceeds `cap`, nothing is written and the call fails with
/// `EMBER_ERR_BUFFER_TOO_SMALL`.
///
/// # Safety
/// if `cap > 0`, `out` points to `cap` writable `T`s; `n_out` NULL or writable.
pub(crate) unsafe fn copy_out<T: Copy>(
    items: &[T],
    out: *mut T,
    cap: usize,
    n_out: *mut usize,
    what: &str,
) -> Result<(), Failure> {
    // SAFETY: forwarded contract.
    unsafe { set_opt(n_out, items.len()) };
    if items.len() > cap {
        return Err(Failure::new(
            EMBER_ERR_BUFFER_TOO_SMALL,
            format!("{what}: {} needed, capacity {cap}", items.len()),
        ));
    }
    let dst = out_ptr(out, cap, items.len(), what)?;
    // SAFETY: `dst` is writable for `cap >= items.len()` elements (caller's contract) and cannot
    // overlap `items`, which Rust owns or borrows from a different object.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), dst, items.len()) };
    Ok(())
}

/// Copy bytes into a caller-owned char buffer and NUL-terminate them. `*len_out` receives the
/// length without the terminator; the buffer needs `len + 1` bytes. Too small: nothing is
/// written, `EMBER_ERR_BUFFER_TOO_SMALL`.
///
/// # Safety
/// if `cap > 0`, `buf` points to `cap` writable bytes; `len_out` NULL or writable.
pub(crate) unsafe fn copy_str_out(
    bytes: &[u8],
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
) -> Result<(), Failure> {
    // SAFETY: forwarded contract.
    unsafe { set_opt(len_out, bytes.len()) };
    if bytes.len() >= cap {
        return Err(Failure::new(
            EMBER_ERR_BUFFER_TOO_SMALL,
            format!(
                "text of {} bytes needs a buffer of {} (with the NUL), capacity {cap}",
                bytes.len(),
                bytes.len() + 1
            ),
        ));
    }
    let dst = out_ptr(buf.cast::<u8>(), cap, bytes.len() + 1, "buf")?;
    // SAFETY: `dst` is writable for `cap > bytes.len()` bytes (caller's contract); c_char and
    // u8 have the same size and alignment; the source is Rust-owned, so no overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
        dst.add(bytes.len()).write(0);
    }
    Ok(())
}

/// Copy as much of `bytes` as fits (cut at a UTF-8 boundary) and NUL-terminate. Used for
/// optional result buffers whose truncation is reported separately.
///
/// # Safety
/// if `cap > 0`, `buf` points to `cap` writable bytes.
pub(crate) unsafe fn copy_str_truncated(
    text: &str,
    buf: *mut c_char,
    cap: usize,
) -> Result<(), Failure> {
    if cap == 0 {
        return Ok(());
    }
    let mut n = text.len().min(cap - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    let dst = out_ptr(buf.cast::<u8>(), cap, n + 1, "text")?;
    // SAFETY: `dst` is writable for `cap > n` bytes (caller's contract); no overlap with the
    // Rust-owned source.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), dst, n);
        dst.add(n).write(0);
    }
    Ok(())
}
