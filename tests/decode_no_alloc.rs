//! The per-token decode loop on the CPU path allocates nothing: a counting global allocator
//! watches `sample` + `eval` of one token after the session is warm.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ember::{Sampler, SamplerParams, Session, SessionParams};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decode_step_allocates_nothing() {
    let Some(model) = common::smollm2() else {
        return;
    };
    let params = SessionParams {
        n_ctx: 256,
        n_batch: 32,
        n_threads: 2,
        logits_all: false,
        ..Default::default()
    };
    let mut session = Session::new(model.clone(), &params).unwrap();
    let prompt = model
        .tokenizer()
        .encode("Once upon a time", true, false)
        .unwrap();
    let sampler_params = SamplerParams {
        temperature: 0.7,
        repeat_penalty: 1.1,
        seed: 1,
        ..Default::default()
    };
    let mut sampler = Sampler::new(sampler_params, model.tokenizer().n_vocab()).unwrap();
    session.eval(&prompt).unwrap();
    // One warm-up step, then count.
    let mut id = sampler.sample(session.logits());
    session.eval(&[id]).unwrap();
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..16 {
        id = sampler.sample(session.logits());
        sampler.accept(id);
        let _piece = model.tokenizer().token_to_piece(id, false).unwrap();
        session.eval(&[id]).unwrap();
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "the decode loop allocated"
    );
}
