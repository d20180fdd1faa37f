//! The per-token decode loop on the CPU path allocates nothing: a counting global allocator
//! watches `sample` + `eval` of one token after the session is warm.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ember::{Sampler, SamplerParams, Session, SessionParams};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// The tests share the counter: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCS.store(0, Ordering::SeqCst);
    let Some(model) = common::smollm2() else {
        return;
    };
    let params = SessionParams {
        n_ctx: 256,
        n_batch: 32,
        n_threads: 2,
        logits_all: false,
        logits_tail: 1,
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

/// A mixture-of-experts decode step allocates nothing either, and runs exactly the token's
/// experts (`expert_used_count` per layer, so it reads 4 of 32 experts' weights); a prompt runs
/// each expert at most once per layer, however many of its tokens picked it.
#[test]
fn moe_decode_runs_only_the_tokens_experts_and_allocates_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCS.store(0, Ordering::SeqCst);
    let Some(path) = common::asset("models/qwen3moe-shape-q4_k_m.gguf") else {
        return;
    };
    let model = std::sync::Arc::new(ember::Model::load(path, &Default::default()).unwrap());
    let x = model.arch().config.experts.clone().unwrap();
    let n_layer = model.arch().config.n_layer as u64;
    let params = SessionParams {
        n_ctx: 256,
        n_batch: 64,
        n_threads: 2,
        ..Default::default()
    };
    let mut session = Session::new(model.clone(), &params).unwrap();
    let text = "Mixture-of-experts models route every token to a few experts of many.";
    let prompt = model.tokenizer().encode(text, false, false).unwrap();
    session.eval(&prompt).unwrap();
    let prefill = session.experts_run().unwrap();
    assert!(
        prefill <= n_layer * x.n_expert as u64,
        "{prefill} expert runs"
    );
    assert!(
        prompt.len() * x.n_used > x.n_expert,
        "the prompt must need grouping"
    );
    let mut id = argmax(session.logits());
    session.eval(&[id]).unwrap();
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..4 {
        let before = session.experts_run().unwrap();
        id = argmax(session.logits());
        session.eval(&[id]).unwrap();
        assert_eq!(
            session.experts_run().unwrap() - before,
            n_layer * x.n_used as u64
        );
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "the MoE decode loop allocated"
    );
}

fn argmax(logits: &[f32]) -> u32 {
    (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap() as u32
}
