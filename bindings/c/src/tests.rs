//! Tests of the C ABI from Rust: the committed header is what cbindgen generates, and the
//! exported functions give what the Rust API gives.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;

use crate::generate::*;
use crate::model::*;
use crate::sampler::*;
use crate::session::*;
use crate::status::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Generate the header in memory from this crate's sources.
fn generate_header() -> Vec<u8> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("bindings/c/cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    out
}

#[test]
fn header_is_fresh() {
    let path = workspace_root().join("include/ember.h");
    let generated = generate_header();
    if std::env::var_os("EMBER_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/ember.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/ember.h is stale: regenerate it with \
         `EMBER_BLESS=1 cargo test --release -p ember-c header_is_fresh` and commit it"
    );
}

const SMOLLM2: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The SmolLM2 model file: present, or a skip (a failure under CI, where it must be there).
fn smollm2_path() -> Option<CString> {
    let path = workspace_root().join(SMOLLM2);
    if path.exists() {
        return Some(CString::new(path.to_str().unwrap()).unwrap());
    }
    let msg = format!(
        "{} missing: run scripts/setup_test_assets.sh",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("SKIP: {msg}");
    None
}

fn last_error() -> String {
    // SAFETY: ember_last_error never returns NULL and the text lives until our next call.
    unsafe { CStr::from_ptr(ember_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// RAII owner of a C model handle, for tests.
struct CModel(*mut ember_model_t);

impl Drop for CModel {
    fn drop(&mut self) {
        // SAFETY: made by ember_model_load, freed once here.
        unsafe { ember_model_free(self.0) }
    }
}

fn load_c(path: &CStr) -> CModel {
    let mut m = ptr::null_mut();
    // SAFETY: valid string and out pointer.
    let st = unsafe { ember_model_load(path.as_ptr(), ptr::null(), &mut m) };
    assert_eq!(st, EMBER_OK, "{}", last_error());
    CModel(m)
}

unsafe extern "C" fn collect_text(text: *const c_char, len: usize, user: *mut c_void) -> bool {
    // SAFETY: `user` is the &mut String passed by the test; `text` has `len` bytes + NUL.
    let (out, bytes) = unsafe {
        (
            &mut *(user as *mut String),
            std::slice::from_raw_parts(text as *const u8, len + 1),
        )
    };
    assert_eq!(bytes[len], 0, "piece is NUL-terminated");
    out.push_str(std::str::from_utf8(&bytes[..len]).unwrap());
    true
}

#[test]
fn c_generate_matches_rust_api_greedy() {
    let Some(path) = smollm2_path() else { return };
    let prompt = "The capital of France is";
    let n_gen = 16;

    // Rust API.
    let model = Arc::new(
        ember_rt::Model::load(path.to_str().unwrap(), &ember_rt::LoadParams::default()).unwrap(),
    );
    let rust_ids = model.tokenizer().encode(prompt, true, true).unwrap();
    let sp = ember_rt::SessionParams {
        n_ctx: 128,
        n_threads: 2,
        ..Default::default()
    };
    let mut session = ember_rt::Session::new(model.clone(), &sp).unwrap();
    let mut sampler = ember_rt::Sampler::new(
        ember_rt::SamplerParams::greedy(),
        model.tokenizer().n_vocab(),
    )
    .unwrap();
    let gp = ember_rt::GenerateParams {
        max_tokens: n_gen,
        ..Default::default()
    };
    let rust_gen = session
        .generate(&rust_ids, &mut sampler, &gp, |_| true)
        .unwrap();

    // C ABI.
    let m = load_c(&path);
    let mut ids = [0u32; 64];
    let mut n = 0usize;
    // SAFETY: valid handle, text and buffers with the capacities given.
    let st = unsafe {
        ember_tokenize(
            m.0,
            prompt.as_ptr().cast(),
            prompt.len(),
            true,
            true,
            ids.as_mut_ptr(),
            ids.len(),
            &mut n,
        )
    };
    assert_eq!(st, EMBER_OK, "{}", last_error());
    assert_eq!(&ids[..n], &rust_ids[..]);

    let mut params = ember_session_default_params();
    params.n_ctx = 128;
    params.n_threads = 2;
    let mut s = ptr::null_mut();
    // SAFETY: valid handles and out pointers throughout; freed at the end.
    unsafe {
        assert_eq!(
            ember_session_new(m.0, &params, &mut s),
            EMBER_OK,
            "{}",
            last_error()
        );
        let greedy = ember_sampler_greedy_params();
        let mut smp = ptr::null_mut();
        assert_eq!(
            ember_sampler_new(&greedy, ember_model_n_vocab(m.0), &mut smp),
            EMBER_OK
        );
        let mut streamed = String::new();
        let mut g = ember_generate_default_params();
        g.max_tokens = n_gen as u32;
        g.on_text = Some(collect_text);
        g.user_data = (&mut streamed as *mut String).cast();
        let mut out_ids = [0u32; 64];
        let mut text = [0 as c_char; 512];
        let mut result = ember_generation_t {
            tokens: out_ids.as_mut_ptr(),
            tokens_capacity: out_ids.len(),
            text: text.as_mut_ptr(),
            text_capacity: text.len(),
            n_tokens: 0,
            text_len: 0,
            stop_reason: -1,
            n_prompt_eval: 0,
            prompt_ms: 0.0,
            generate_ms: 0.0,
            n_drafted: 0,
            n_draft_accepted: 0,
            escalated: false,
            confidence: 0.0,
        };
        let st = ember_generate(s, smp, ids.as_ptr(), n, &g, &mut result);
        assert_eq!(st, EMBER_OK, "{}", last_error());
        assert_eq!(&out_ids[..result.n_tokens], &rust_gen.tokens[..]);
        assert_eq!(
            CStr::from_ptr(text.as_ptr()).to_str().unwrap(),
            rust_gen.text
        );
        assert_eq!(streamed, rust_gen.text);
        assert_eq!(result.text_len, rust_gen.text.len());
        assert_eq!(result.n_prompt_eval, n);
        assert_eq!(ember_session_n_past(s) as usize, session.n_past());
        ember_sampler_free(smp);
        ember_session_free(s);
    }
}

#[test]
fn panic_inside_an_entry_point_becomes_internal_error() {
    let st = guard(|| panic!("boom"));
    assert_eq!(st, EMBER_ERR_INTERNAL);
    assert!(last_error().contains("boom"), "{}", last_error());
    assert_eq!(guard_value(7u32, || panic!("again")), 7);
}

#[test]
fn last_error_is_per_thread_and_cleared_by_success() {
    let mut m = ptr::null_mut();
    // SAFETY: NULL path is the error under test; out pointer valid.
    let st = unsafe { ember_model_load(ptr::null(), ptr::null(), &mut m) };
    assert_eq!(st, EMBER_ERR_NULL_POINTER);
    assert!(m.is_null());
    assert!(last_error().contains("path"), "{}", last_error());
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "", "another thread sees its own (empty) message");
    // A successful call clears this thread's message.
    // SAFETY: NULL is accepted by the free functions.
    unsafe { ember_model_free(ptr::null_mut()) };
    assert_eq!(last_error(), "");
}

#[test]
fn null_handles_are_reported_not_dereferenced() {
    // SAFETY: NULL is the input under test for every call.
    unsafe {
        assert_eq!(ember_model_n_vocab(ptr::null()), 0);
        assert_eq!(last_error(), "`model` is NULL");
        assert_eq!(ember_model_token_bos(ptr::null()), EMBER_TOKEN_NONE);
        assert_eq!(ember_session_reset(ptr::null_mut()), EMBER_ERR_NULL_POINTER);
        assert_eq!(ember_session_abort(ptr::null()), EMBER_ERR_NULL_POINTER);
        assert_eq!(ember_sampler_reset(ptr::null_mut()), EMBER_ERR_NULL_POINTER);
        assert_eq!(
            ember_generate(
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null_mut()
            ),
            EMBER_ERR_NULL_POINTER
        );
        let mut smp = ptr::null_mut();
        assert_eq!(ember_sampler_new(ptr::null(), 10, &mut smp), EMBER_OK);
        let mut tok = 0;
        assert_eq!(
            ember_sampler_sample(smp, ptr::null(), 5, &mut tok),
            EMBER_ERR_NULL_POINTER
        );
        ember_sampler_free(smp);
    }
}

#[test]
fn session_in_use_elsewhere_reports_busy() {
    let Some(path) = smollm2_path() else { return };
    let m = load_c(&path);
    let mut params = ember_session_default_params();
    params.n_ctx = 32;
    params.n_threads = 1;
    let mut s = ptr::null_mut();
    // SAFETY: valid handles; the guard below holds the session's lock as another thread would.
    unsafe {
        assert_eq!(
            ember_session_new(m.0, &params, &mut s),
            EMBER_OK,
            "{}",
            last_error()
        );
        let held = (*s).lock().unwrap();
        assert_eq!(ember_session_reset(s), EMBER_ERR_BUSY);
        // Abort and the counters never need the lock.
        assert_eq!(ember_session_abort(s), EMBER_OK);
        assert_eq!(ember_session_n_ctx(s), 32);
        drop(held);
        assert_eq!(ember_session_reset(s), EMBER_OK);
        ember_session_free(s);
    }
}

#[test]
fn gpu_device_opens_or_is_unsupported() {
    let Some(path) = smollm2_path() else { return };
    let m = load_c(&path);
    let mut params = ember_session_default_params();
    params.device = EMBER_DEVICE_GPU;
    params.n_ctx = 64;
    let mut s = ptr::null_mut();
    // SAFETY: valid handle and out pointer.
    let st = unsafe { ember_session_new(m.0, &params, &mut s) };
    // A session where wgpu finds an adapter (CI: Mesa's lavapipe), else a clear refusal.
    if st == EMBER_OK {
        assert!(!s.is_null());
        // SAFETY: a live session from ember_session_new.
        unsafe { ember_session_free(s) };
    } else {
        assert_eq!(st, EMBER_ERR_UNSUPPORTED, "{}", last_error());
        assert!(s.is_null());
    }
    params.device = 42;
    // SAFETY: as above.
    let st = unsafe { ember_session_new(m.0, &params, &mut s) };
    assert_eq!(st, EMBER_ERR_INVALID_ARGUMENT);
}
