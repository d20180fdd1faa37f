//! A persistent thread pool for fork-join kernels, called hundreds of times per token.
//!
//! Workers are spawned once. [`ThreadPool::run`] publishes a borrowed closure, bumps a
//! generation counter and runs index 0 on the calling thread; workers, which spin briefly on the
//! counter and then sleep on a condition variable, run indices `1..n`. `run` returns when every
//! index has finished. It performs no heap allocation.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How many times an idle worker polls the generation counter before going to sleep. Matrix
/// products of one token follow each other within microseconds, so a short spin keeps the wake
/// latency at a cache-line transfer; the sleep keeps idle pools from burning CPU.
const SPIN_POLLS: u32 = 1 << 14;
/// Spinning workers yield their time slice once every this many polls.
const YIELD_EVERY: u32 = 64;
/// How many times the caller polls for workers to finish before yielding its time slice.
const WAIT_POLLS: u32 = 256;

type Job = *const (dyn Fn(usize, usize) + Sync + 'static);

struct Shared {
    n_threads: usize,
    /// Incremented once per job (and once at shutdown); workers run a job per new value.
    generation: AtomicUsize,
    /// Workers that have not finished the current job.
    pending: AtomicUsize,
    /// The current job. Written only by the thread that owns `busy`, before it bumps
    /// `generation`; read by workers only between seeing that bump and decrementing `pending`.
    job: UnsafeCell<Option<Job>>,
    /// Set while a `run` is in flight, so overlapping or nested runs take the serial path.
    busy: AtomicBool,
    shutdown: AtomicBool,
    /// Workers that are (about to be) asleep on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// A job panicked on a worker; reported to the caller of `run`.
    worker_panicked: AtomicBool,
}

// SAFETY: the only non-Sync field is `job`, whose accesses are ordered by `busy` (one writer at
// a time) and the `generation` (release) / `pending` (release/acquire) handshake described on
// the field; the pointee is `Sync`, so calling it from several threads at once is allowed.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw job pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// A fixed set of worker threads executing `f(thread_idx, n_threads)` for every index.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// A pool of `n_threads` threads including the caller (so `n_threads - 1` workers are
    /// spawned; 0 is treated as 1). If the OS refuses to spawn a thread, the pool keeps the
    /// threads it got and [`n_threads`](Self::n_threads) reports that smaller count.
    pub fn new(n_threads: usize) -> ThreadPool {
        let wanted = n_threads.max(1);
        let mut workers = Vec::with_capacity(wanted - 1);
        // Workers need the final thread count before they start; spawn, then publish it.
        let shared_slot: Arc<std::sync::OnceLock<Arc<Shared>>> =
            Arc::new(std::sync::OnceLock::new());
        for idx in 1..wanted {
            let slot = shared_slot.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ember-worker-{idx}"))
                .spawn(move || {
                    // Blocks only until `new` publishes the shared state, right after spawning.
                    let shared = loop {
                        if let Some(s) = slot.get() {
                            break s.clone();
                        }
                        std::thread::yield_now();
                    };
                    drop(slot);
                    worker_loop(&shared, idx);
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break,
            }
        }
        let shared = Arc::new(Shared {
            n_threads: workers.len() + 1,
            generation: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            busy: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            worker_panicked: AtomicBool::new(false),
        });
        // A spawn failure leaves no worker with an index >= the published count, because
        // workers are spawned in index order and spawning stops at the first failure.
        let _ = shared_slot.set(shared.clone());
        ThreadPool { shared, workers }
    }

    /// Threads that take part in each [`run`](Self::run), the caller included.
    pub fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    /// Run `f(i, n)` once for every `i` in `0..n` (`n = self.n_threads()`), index 0 on the
    /// calling thread, and return when all have finished. No heap allocation.
    ///
    /// `i` is a work-partition index, not a thread identity: use it to split work (e.g. rows
    /// `len*i/n .. len*(i+1)/n`), not to pick unsynchronised per-thread state.
    ///
    /// If another `run` on this pool is in progress (from another thread, or nested inside
    /// `f`), this call runs all indices serially on the calling thread instead of waiting, so
    /// the pool can never deadlock. If `f` panics on any thread, `run` panics after every
    /// index has finished.
    pub fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        let s = &*self.shared;
        let n = s.n_threads;
        if n == 1 {
            f(0, 1);
            return;
        }
        if s.busy.swap(true, Acquire) {
            for i in 0..n {
                f(i, n);
            }
            return;
        }
        // SAFETY: erasing the lifetime of `f` is sound because workers dereference the pointer
        // only until they decrement `pending`, and `Finish` (below) does not let this function
        // return or unwind before `pending` is back to zero and the pointer is cleared.
        let job: Job = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize, usize) + Sync + '_), Job>(f as *const _)
        };
        // SAFETY: we own `busy`, and the previous job finished (pending == 0) before its `run`
        // released `busy`, so no worker reads `job` now.
        unsafe { *s.job.get() = Some(job) };
        s.pending.store(n - 1, Relaxed);
        // SeqCst pairs with the workers' `sleepers` increment: either we see a sleeper and
        // notify it, or it sees the new generation before waiting.
        s.generation.fetch_add(1, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        struct Finish<'a>(&'a Shared);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                let s = self.0;
                let mut polls = 0u32;
                while s.pending.load(Acquire) != 0 {
                    if polls < WAIT_POLLS {
                        polls += 1;
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                // SAFETY: every worker has finished with the job (pending == 0, acquire).
                unsafe { *s.job.get() = None };
                s.busy.store(false, Release);
            }
        }
        let finish = Finish(s);
        f(0, n);
        drop(finish);
        if s.worker_panicked.swap(false, Relaxed) {
            panic!("ThreadPool::run: the job panicked on a worker thread");
        }
    }
}

fn worker_loop(s: &Shared, idx: usize) {
    let mut seen = 0usize;
    loop {
        let mut polls = 0u32;
        loop {
            if s.generation.load(Acquire) != seen {
                break;
            }
            if polls < SPIN_POLLS {
                polls += 1;
                // Yield now and then so that, when threads outnumber free cores, a spinning
                // worker does not hold a core the caller or another worker needs.
                if polls.is_multiple_of(YIELD_EVERY) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            s.sleepers.fetch_add(1, SeqCst);
            let mut guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            while s.generation.load(SeqCst) == seen {
                guard = s.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            drop(guard);
            s.sleepers.fetch_sub(1, SeqCst);
        }
        seen = s.generation.load(Acquire);
        if s.shutdown.load(Acquire) {
            return;
        }
        // SAFETY: a new generation was published (acquire) with `job` set, and `run` keeps the
        // closure alive until we decrement `pending` below.
        if let Some(job) = unsafe { *s.job.get() } {
            // SAFETY: as above; the pointee is a live `dyn Fn + Sync`.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(idx, s.n_threads) }));
            if result.is_err() {
                s.worker_panicked.store(true, Relaxed);
            }
        }
        s.pending.fetch_sub(1, Release);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.shutdown.store(true, Release);
        s.generation.fetch_add(1, SeqCst);
        {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("n_threads", &self.n_threads())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Split `0..len` into `n` contiguous ranges, as kernels do.
    fn range(i: usize, n: usize, len: usize) -> std::ops::Range<usize> {
        len * i / n..len * (i + 1) / n
    }

    #[test]
    fn work_split_covers_every_index_exactly_once() {
        for threads in [1, 2, 3, 4, 7] {
            let pool = ThreadPool::new(threads);
            assert_eq!(pool.n_threads(), threads);
            for len in [0usize, 1, 5, 64, 1000] {
                let hits: Vec<AtomicU32> = (0..len).map(|_| AtomicU32::new(0)).collect();
                let ids: Vec<AtomicU32> = (0..threads).map(|_| AtomicU32::new(0)).collect();
                pool.run(&|i, n| {
                    assert_eq!(n, threads);
                    ids[i].fetch_add(1, Relaxed);
                    for j in range(i, n, len) {
                        hits[j].fetch_add(1, Relaxed);
                    }
                });
                assert!(
                    hits.iter().all(|h| h.load(Relaxed) == 1),
                    "threads={threads} len={len}"
                );
                assert!(
                    ids.iter().all(|h| h.load(Relaxed) == 1),
                    "each thread index runs once"
                );
            }
        }
    }

    #[test]
    fn many_consecutive_runs_complete() {
        // 4 threads also exercises oversubscription on small CI machines.
        for (threads, rounds) in [(2usize, 20_000usize), (4, 2_000)] {
            let pool = ThreadPool::new(threads);
            let total = AtomicUsize::new(0);
            for round in 0..rounds {
                pool.run(&|i, _| {
                    total.fetch_add(i + round, Relaxed);
                });
            }
            let per_round: usize = (0..threads).sum();
            let round_sum: usize = (0..rounds).sum();
            assert_eq!(
                total.load(Relaxed),
                rounds * per_round + threads * round_sum
            );
        }
    }

    #[test]
    fn sleeping_workers_wake_up() {
        let pool = ThreadPool::new(3);
        let count = AtomicUsize::new(0);
        for _ in 0..3 {
            // Long enough for workers to exhaust their spin and park on the condvar.
            std::thread::sleep(std::time::Duration::from_millis(30));
            pool.run(&|_, _| {
                count.fetch_add(1, Relaxed);
            });
        }
        assert_eq!(count.load(Relaxed), 9);
    }

    #[test]
    fn nested_run_falls_back_to_serial() {
        let pool = ThreadPool::new(2);
        let count = AtomicUsize::new(0);
        pool.run(&|_, _| {
            pool.run(&|_, _| {
                count.fetch_add(1, Relaxed);
            });
        });
        assert_eq!(count.load(Relaxed), 4);
    }

    #[test]
    fn worker_panic_is_reported_to_the_caller_and_pool_survives() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|i, _| {
                if i == 1 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(&|_, _| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 2);
    }

    #[test]
    fn single_thread_pool_runs_inline() {
        let pool = ThreadPool::new(0);
        assert_eq!(pool.n_threads(), 1);
        let here = std::thread::current().id();
        pool.run(&|i, n| {
            assert_eq!((i, n), (0, 1));
            assert_eq!(std::thread::current().id(), here);
        });
    }
}
