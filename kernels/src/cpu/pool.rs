//! A persistent thread pool for fork-join kernels, called hundreds of times per token.
//!
//! Workers are spawned once. [`ThreadPool::run_chunks`] publishes a borrowed closure and a chunk
//! counter, bumps a generation number and then, like every worker that wakes up in time, claims
//! chunk indices from the counter until none are left. The caller waits only for workers that
//! actually joined the job, never for one that has not woken up yet: on a machine where other
//! processes hold the cores, a descheduled worker costs a slower op, not a stalled one (a
//! fork-join pool with fixed per-thread work would wait a whole scheduler time slice for it).
//! Workers spin briefly on the generation number and then sleep on a condition variable.
//! No heap allocation per call.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How many times an idle worker polls the generation counter before going to sleep. Matrix
/// products of one token follow each other within microseconds, so a short spin keeps the wake
/// latency at a cache-line transfer; the sleep keeps idle pools from burning CPU.
const SPIN_POLLS: u32 = 1 << 14;
/// Spinning workers yield their time slice once every this many polls.
const YIELD_EVERY: u32 = 64;
/// How many times the caller polls for joined workers to finish before yielding its time slice.
const WAIT_POLLS: u32 = 256;

type Job = *const (dyn Fn(usize, usize) + Sync + 'static);

/// `state` packs the job's generation (high 32 bits), a "closed" flag (bit 31: no worker may
/// join any more) and the number of workers that joined and have not finished (low 31 bits).
const CLOSED: u64 = 1 << 31;
const ACTIVE_MASK: u64 = CLOSED - 1;

struct Shared {
    n_threads: usize,
    /// Incremented once per job (and once at shutdown); workers look for a job per new value.
    generation: AtomicUsize,
    /// See [`CLOSED`]. A worker may read `job` only after joining (incrementing the active
    /// count of the current, open generation) and until it leaves (decrementing it).
    state: AtomicU64,
    /// Next chunk index to hand out, and how many there are in the current job.
    next_chunk: AtomicUsize,
    n_chunks: AtomicUsize,
    /// The current job. Written only by the thread that owns `busy`, while the state is
    /// closed (no worker inside).
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
// a time) and the `state` join/leave handshake described on the fields; the pointee is `Sync`,
// so calling it from several threads at once is allowed.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw job pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

impl Shared {
    /// Claim chunk indices of the current job until none are left, running each.
    fn drain_chunks(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        let n = self.n_chunks.load(Relaxed);
        loop {
            let i = self.next_chunk.fetch_add(1, Relaxed);
            if i >= n {
                return;
            }
            f(i, n);
        }
    }
}

/// A fixed set of worker threads executing `f(chunk, n_chunks)` for every chunk index.
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
                    worker_loop(&shared);
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break,
            }
        }
        let shared = Arc::new(Shared {
            n_threads: workers.len() + 1,
            generation: AtomicUsize::new(0),
            state: AtomicU64::new(CLOSED),
            next_chunk: AtomicUsize::new(0),
            n_chunks: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            busy: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            worker_panicked: AtomicBool::new(false),
        });
        let _ = shared_slot.set(shared.clone());
        ThreadPool { shared, workers }
    }

    /// Threads that can take part in each run, the caller included.
    pub fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    /// [`run_chunks`](Self::run_chunks) with one chunk per thread: `f(i, n)` for every `i` in
    /// `0..n`, `n = self.n_threads()`.
    pub fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        self.run_chunks(self.shared.n_threads, f)
    }

    /// Run `f(i, n_chunks)` exactly once for every `i` in `0..n_chunks`, on the calling thread
    /// and whichever workers are awake to help, and return when all have finished. No heap
    /// allocation.
    ///
    /// `i` is a work-partition index, not a thread identity: use it to split work (e.g. rows
    /// `len*i/n .. len*(i+1)/n`). Per-chunk scratch indexed by `i` is fine (no two threads run
    /// the same `i`); state shared between chunks needs synchronisation.
    ///
    /// If another run on this pool is in progress (from another thread, or nested inside
    /// `f`), this call runs all chunks serially on the calling thread instead of waiting, so
    /// the pool can never deadlock. If `f` panics on any thread, this panics after every
    /// chunk that was started has finished.
    pub fn run_chunks(&self, n_chunks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        let s = &*self.shared;
        if s.n_threads == 1 || n_chunks <= 1 || s.busy.swap(true, Acquire) {
            for i in 0..n_chunks {
                f(i, n_chunks);
            }
            return;
        }
        // SAFETY: erasing the lifetime of `f` is sound because workers dereference the pointer
        // only while joined to this generation, and `Finish` (below) does not let this
        // function return or unwind before the generation is closed with no worker joined.
        let job: Job = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize, usize) + Sync + '_), Job>(f as *const _)
        };
        // SAFETY: we own `busy` and the state is closed, so no worker reads `job` now.
        unsafe { *s.job.get() = Some(job) };
        s.n_chunks.store(n_chunks, Relaxed);
        s.next_chunk.store(0, Relaxed);
        let gen = s.generation.load(Relaxed).wrapping_add(1);
        // Open the new generation (release: job and counters are visible to joiners), then
        // announce it. SeqCst pairs with the workers' `sleepers` increment: either we see a
        // sleeper and notify it, or it sees the new generation before waiting.
        s.state.store(((gen as u64) & 0xFFFF_FFFF) << 32, Release);
        s.generation.store(gen, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        struct Finish<'a>(&'a Shared);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                let s = self.0;
                // Close the generation: set the flag, then wait for joined workers to leave.
                let mut st = s.state.fetch_or(CLOSED, AcqRel) | CLOSED;
                let mut polls = 0u32;
                while st & ACTIVE_MASK != 0 {
                    if polls < WAIT_POLLS {
                        polls += 1;
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                    st = s.state.load(Acquire);
                }
                // SAFETY: the generation is closed and no worker is joined (acquire).
                unsafe { *s.job.get() = None };
                s.busy.store(false, Release);
            }
        }
        let finish = Finish(s);
        s.drain_chunks(f);
        drop(finish);
        if s.worker_panicked.swap(false, Relaxed) {
            panic!("ThreadPool::run: the job panicked on a worker thread");
        }
    }
}

/// Join generation `gen` if it is still open: returns whether the worker may run its chunks.
fn join(s: &Shared, gen: usize) -> bool {
    let want = ((gen as u64) & 0xFFFF_FFFF) << 32;
    let mut st = s.state.load(Relaxed);
    loop {
        if st & !ACTIVE_MASK != want {
            return false; // closed, or already another generation
        }
        match s.state.compare_exchange_weak(st, st + 1, Acquire, Relaxed) {
            Ok(_) => return true,
            Err(now) => st = now,
        }
    }
}

fn worker_loop(s: &Shared) {
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
        if !join(s, seen) {
            continue; // the caller already finished that job without us
        }
        // SAFETY: joined to the open generation (acquire), so `job` is set and `run_chunks`
        // keeps the closure alive until we leave below.
        if let Some(job) = unsafe { *s.job.get() } {
            // SAFETY: as above; the pointee is a live `dyn Fn + Sync`.
            let result = catch_unwind(AssertUnwindSafe(|| s.drain_chunks(unsafe { &*job })));
            if result.is_err() {
                s.worker_panicked.store(true, Relaxed);
            }
        }
        s.state.fetch_sub(1, Release);
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
