//! Models: loading, information, and the tokenizer that comes with them.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, OnceLock};

use ember_rt::{LoadParams, Model, Vocabulary};

use crate::args::{arg, arg_mut, copy_out, copy_str_out, slice_arg, str_arg};
use crate::status::{ember_status_t, guard, guard_value, Failure, EMBER_ERR_NOT_FOUND};

/// A token id (an index into the model's vocabulary).
pub type ember_token_t = u32;

/// "No token": returned by the special-token queries when the model has none.
pub const EMBER_TOKEN_NONE: ember_token_t = u32::MAX;

/// Load progress, called with a value in [0, 1]. Return true to continue, false to abandon the
/// load (it then fails with EMBER_ERR_ABORTED). Called on the thread that calls
/// `ember_model_load`.
pub type ember_progress_callback_t =
    Option<unsafe extern "C" fn(progress: f32, user_data: *mut c_void) -> bool>;

/// How to load a model. Get the defaults from `ember_model_default_params()`, then change
/// fields.
#[repr(C)]
pub struct ember_model_params_t {
    /// Map the file into memory (default true). False: read it into memory, for filesystems that
    /// cannot map.
    pub use_mmap: bool,
    /// Optional progress callback (default NULL).
    pub progress_callback: ember_progress_callback_t,
    /// Passed to `progress_callback` unchanged (default NULL).
    pub progress_user_data: *mut c_void,
}

/// A loaded model: immutable and thread-safe. Any number of threads may use one model at the
/// same time (tokenize, create sessions, query information). Sessions keep their model alive:
/// it may be freed before its sessions.
pub struct ember_model_t {
    pub(crate) model: Arc<Model>,
    /// The vocabulary as the constraint engine sees it, built by the first
    /// `ember_constraint_new` and shared by every constraint compiled for this model.
    pub(crate) vocabulary: OnceLock<Arc<Vocabulary>>,
}

impl ember_model_t {
    pub(crate) fn vocabulary(&self) -> Result<Arc<Vocabulary>, Failure> {
        Ok(Vocabulary::cached(&self.vocabulary, &self.model)?)
    }
}

/// Default model parameters: mmap on, no progress callback.
#[no_mangle]
pub extern "C" fn ember_model_default_params() -> ember_model_params_t {
    ember_model_params_t {
        use_mmap: LoadParams::default().use_mmap,
        progress_callback: None,
        progress_user_data: std::ptr::null_mut(),
    }
}

/// Load a GGUF model file. On success `*out_model` receives a new model, to be released with
/// `ember_model_free`; on failure it is set to NULL.
///
/// `params` may be NULL for the defaults. Errors: EMBER_ERR_NULL_POINTER, EMBER_ERR_IO (missing
/// or unreadable file), EMBER_ERR_INVALID_MODEL (corrupt file), EMBER_ERR_UNSUPPORTED,
/// EMBER_ERR_ABORTED (the progress callback returned false), EMBER_ERR_INVALID_ARGUMENT (path not
/// UTF-8).
///
/// # Safety
/// `path` is a NUL-terminated string; `params` is NULL or valid; `out_model` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_model_load(
    path: *const c_char,
    params: *const ember_model_params_t,
    out_model: *mut *mut ember_model_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_model, "out_model") }?;
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg(path, "path") }?;
        let defaults = ember_model_default_params();
        // SAFETY: the caller's contract.
        let params = unsafe { params.as_ref() }.unwrap_or(&defaults);
        let load = LoadParams {
            use_mmap: params.use_mmap,
        };
        let callback = params.progress_callback;
        let user_data = params.progress_user_data;
        let model = Model::load_with_progress(path, &load, |p| match callback {
            // SAFETY: the caller supplied this function pointer and its user data together.
            Some(f) => unsafe { f(p, user_data) },
            None => true,
        })?;
        *out = Box::into_raw(Box::new(ember_model_t {
            model: Arc::new(model),
            vocabulary: OnceLock::new(),
        }));
        Ok(())
    })
}

/// Release a model. NULL is ignored. Sessions created from it stay valid. Must not run at the
/// same time as another call on the same model handle.
///
/// # Safety
/// `model` is NULL or a pointer from `ember_model_load` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ember_model_free(model: *mut ember_model_t) {
    guard(|| {
        if !model.is_null() {
            // SAFETY: made by `Box::into_raw` in `ember_model_load`, freed once (caller's
            // contract).
            drop(unsafe { Box::from_raw(model) });
        }
        Ok(())
    });
}

/// # Safety
/// `model` is NULL or a live model handle.
unsafe fn model_ref<'a>(model: *const ember_model_t) -> Result<&'a Model, Failure> {
    // SAFETY: forwarded contract.
    Ok(&unsafe { arg(model, "model") }?.model)
}

/// Number of weights (elements of all tensors); 0 if `model` is NULL.
///
/// # Safety
/// `model` is NULL or a live model handle.
#[no_mangle]
pub unsafe extern "C" fn ember_model_n_params(model: *const ember_model_t) -> u64 {
    // SAFETY: forwarded contract.
    guard_value(0, || Ok(unsafe { model_ref(model) }?.n_params()))
}

/// Size of the model file in bytes; 0 if `model` is NULL.
///
/// # Safety
/// `model` is NULL or a live model handle.
#[no_mangle]
pub unsafe extern "C" fn ember_model_file_size(model: *const ember_model_t) -> u64 {
    // SAFETY: forwarded contract.
    guard_value(0, || Ok(unsafe { model_ref(model) }?.file_size()))
}

/// Context length the model was trained with; 0 if `model` is NULL.
///
/// # Safety
/// `model` is NULL or a live model handle.
#[no_mangle]
pub unsafe extern "C" fn ember_model_n_ctx_train(model: *const ember_model_t) -> u32 {
    guard_value(0, || {
        // SAFETY: forwarded contract.
        let n = unsafe { model_ref(model) }?.n_ctx_train();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    })
}

/// Number of tokens in the vocabulary; 0 if `model` is NULL.
///
/// # Safety
/// `model` is NULL or a live model handle.
#[no_mangle]
pub unsafe extern "C" fn ember_model_n_vocab(model: *const ember_model_t) -> u32 {
    guard_value(0, || {
        // SAFETY: forwarded contract.
        let n = unsafe { model_ref(model) }?.tokenizer().n_vocab();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    })
}

/// Copy the architecture name ("llama", "qwen2") into `buf` (see "Buffers" above).
///
/// # Safety
/// `model` is NULL or live; `buf` has `buf_size` writable bytes (or is NULL with size 0);
/// `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_model_architecture(
    model: *const ember_model_t,
    buf: *mut c_char,
    buf_size: usize,
    len_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: forwarded contract.
        let m = unsafe { model_ref(model) }?;
        let name = m.arch().config.variant.name();
        // SAFETY: forwarded contract.
        unsafe { copy_str_out(name.as_bytes(), buf, buf_size, len_out) }
    })
}

/// Copy the model's name (`general.name`) into `buf`. EMBER_ERR_NOT_FOUND if the file has
/// none.
///
/// # Safety
/// As for `ember_model_architecture`.
#[no_mangle]
pub unsafe extern "C" fn ember_model_name(
    model: *const ember_model_t,
    buf: *mut c_char,
    buf_size: usize,
    len_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: forwarded contract.
        let m = unsafe { model_ref(model) }?;
        let name = m
            .name()
            .ok_or_else(|| Failure::new(EMBER_ERR_NOT_FOUND, "the model has no general.name"))?;
        // SAFETY: forwarded contract.
        unsafe { copy_str_out(name.as_bytes(), buf, buf_size, len_out) }
    })
}

/// Copy the model's Jinja chat template (`tokenizer.chat_template`) into `buf`.
/// EMBER_ERR_NOT_FOUND if the file has none.
///
/// # Safety
/// As for `ember_model_architecture`.
#[no_mangle]
pub unsafe extern "C" fn ember_model_chat_template(
    model: *const ember_model_t,
    buf: *mut c_char,
    buf_size: usize,
    len_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: forwarded contract.
        let m = unsafe { model_ref(model) }?;
        let t = m
            .chat_template()
            .ok_or_else(|| Failure::new(EMBER_ERR_NOT_FOUND, "the model has no chat template"))?;
        // SAFETY: forwarded contract.
        unsafe { copy_str_out(t.as_bytes(), buf, buf_size, len_out) }
    })
}

fn token_or_none(t: Option<u32>) -> ember_token_t {
    t.unwrap_or(EMBER_TOKEN_NONE)
}

/// Beginning-of-sequence token, or EMBER_TOKEN_NONE (also if `model` is NULL).
///
/// # Safety
/// `model` is NULL or a live model handle.
#[no_mangle]
pub unsafe extern "C" fn ember_model_token_bos(model: *const ember_model_t) -> ember_token_t {
    guard_value(EMBER_TOKEN_NONE, || {
        // SAFETY: forwarded contract.
        Ok(token_or_none(
            unsafe { model_ref(model) }?.tokenizer().bos(),
        ))
    })
}

/// End-of-sequence token, or EMBER_TOKEN_NONE (also if `model` is NULL).
///
/// # Safety
/// `model` is NULL or a live model handle.
#[no_mangle]
pub unsafe extern "C" fn ember_model_token_eos(model: *const ember_model_t) -> ember_token_t {
    guard_value(EMBER_TOKEN_NONE, || {
        // SAFETY: forwarded contract.
        Ok(token_or_none(
            unsafe { model_ref(model) }?.tokenizer().eos(),
        ))
    })
}

/// True if `token` ends a generation (EOS, end-of-turn, ...). False for other tokens, invalid
/// ids and a NULL model.
///
/// # Safety
/// `model` is NULL or a live model handle.
#[no_mangle]
pub unsafe extern "C" fn ember_model_token_is_eog(
    model: *const ember_model_t,
    token: ember_token_t,
) -> bool {
    guard_value(false, || {
        // SAFETY: forwarded contract.
        Ok(unsafe { model_ref(model) }?.tokenizer().is_eog(token))
    })
}

/// Tokenize `text_len` bytes of `text` (need not be NUL-terminated; invalid UTF-8 is handled as
/// llama.cpp does). `add_special` adds BOS/EOS as the vocabulary asks; `parse_special` lets
/// control tokens written in the text (e.g. "<|im_start|>") become single tokens.
///
/// The number of tokens is always stored in `*n_tokens_out`; if it exceeds `tokens_capacity`
/// nothing is written and the result is EMBER_ERR_BUFFER_TOO_SMALL (call again with a larger
/// array). `tokens` may be NULL when `tokens_capacity` is 0.
///
/// # Safety
/// `model` is NULL or live; `text` has `text_len` readable bytes (or `text_len` is 0);
/// `tokens` has `tokens_capacity` writable elements; `n_tokens_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_tokenize(
    model: *const ember_model_t,
    text: *const c_char,
    text_len: usize,
    add_special: bool,
    parse_special: bool,
    tokens: *mut ember_token_t,
    tokens_capacity: usize,
    n_tokens_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: forwarded contract.
        let m = unsafe { model_ref(model) }?;
        // SAFETY: forwarded contract; c_char and u8 have the same layout.
        let bytes = unsafe { slice_arg(text.cast::<u8>(), text_len, "text") }?;
        let ids = m
            .tokenizer()
            .encode_bytes(bytes, add_special, parse_special)?;
        // SAFETY: forwarded contract.
        unsafe { copy_out(&ids, tokens, tokens_capacity, n_tokens_out, "tokens") }
    })
}

/// Turn tokens back into text, like llama_detokenize: `remove_special` drops a leading BOS /
/// trailing EOS the vocabulary adds; `unparse_special` renders control tokens as their text.
/// The text may contain invalid UTF-8 if the tokens cut a character.
///
/// The text length (without the NUL) is always stored in `*len_out`; the buffer needs one more
/// byte for the NUL. Too small: nothing is written, EMBER_ERR_BUFFER_TOO_SMALL.
/// EMBER_ERR_INVALID_TOKEN if an id is outside the vocabulary.
///
/// # Safety
/// `model` is NULL or live; `tokens` has `n_tokens` readable elements (or `n_tokens` is 0);
/// `buf` has `buf_size` writable bytes; `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_detokenize(
    model: *const ember_model_t,
    tokens: *const ember_token_t,
    n_tokens: usize,
    remove_special: bool,
    unparse_special: bool,
    buf: *mut c_char,
    buf_size: usize,
    len_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: forwarded contract.
        let m = unsafe { model_ref(model) }?;
        // SAFETY: forwarded contract.
        let ids = unsafe { slice_arg(tokens, n_tokens, "tokens") }?;
        let text = m
            .tokenizer()
            .detokenize(ids, remove_special, unparse_special)?;
        // SAFETY: forwarded contract.
        unsafe { copy_str_out(&text, buf, buf_size, len_out) }
    })
}

/// The bytes of one token (may be part of a UTF-8 character), NUL-terminated in `buf`.
/// Control tokens give "" unless `special`. Buffer rules as for `ember_detokenize`.
///
/// # Safety
/// As for `ember_detokenize`.
#[no_mangle]
pub unsafe extern "C" fn ember_token_to_piece(
    model: *const ember_model_t,
    token: ember_token_t,
    special: bool,
    buf: *mut c_char,
    buf_size: usize,
    len_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: forwarded contract.
        let m = unsafe { model_ref(model) }?;
        let piece = m.tokenizer().token_to_piece(token, special)?;
        // SAFETY: forwarded contract.
        unsafe { copy_str_out(piece, buf, buf_size, len_out) }
    })
}
