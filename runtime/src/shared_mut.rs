//! Hand out disjoint mutable pieces of one buffer to the threads of a `ThreadPool::run` call.

use std::marker::PhantomData;

/// A mutable slice that several threads may write to at the same time, each in its own part.
///
/// The borrow checker cannot see that thread `t` only touches rows `t, t + n, ...`; this type
/// carries the slice across the `Fn + Sync` closure boundary, and `chunk` hands out a row, with the
/// caller promising that no two threads ever ask for overlapping ranges.
pub(crate) struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: `SharedMut` is only a pointer to a `&mut [T]` borrowed for `'a`; sending it to or
// sharing it between threads is sound as long as the ranges they access are disjoint, which is
// the contract of `chunk` (an `unsafe fn`). `T: Send` is required because elements are written
// from other threads.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    pub(crate) fn new(slice: &'a mut [T]) -> Self {
        SharedMut {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _borrow: PhantomData,
        }
    }

    /// The elements `start..start + len`.
    ///
    /// # Safety
    /// No other live reference obtained from this `SharedMut` may overlap the range.
    /// The range is bounds-checked (an out-of-range request panics, which is a bug, not input).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn chunk(&self, start: usize, len: usize) -> &mut [T] {
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "chunk out of range"
        );
        // SAFETY: in bounds (checked above); disjointness is the caller's contract; the memory
        // is borrowed mutably for 'a, which outlives `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}
