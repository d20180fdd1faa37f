//! Chat templates: render a conversation into the prompt text a model expects.

use std::ffi::c_char;

use ember_rt::chat::{ChatMessage, ChatTemplate};

use crate::args::{arg, arg_mut, copy_str_out, slice_arg, str_arg};
use crate::model::ember_model_t;
use crate::status::{ember_status_t, guard, Failure, EMBER_ERR_NOT_FOUND};

/// One message of a conversation: NUL-terminated UTF-8 role ("system", "user", "assistant")
/// and content.
#[repr(C)]
pub struct ember_chat_message_t {
    pub role: *const c_char,
    pub content: *const c_char,
}

/// A compiled Jinja chat template. Immutable: rendering is thread-safe.
pub struct ember_chat_template_t {
    template: ChatTemplate,
}

fn boxed(template: ChatTemplate, out: &mut *mut ember_chat_template_t) {
    *out = Box::into_raw(Box::new(ember_chat_template_t { template }));
}

/// Compile a Hugging Face style Jinja template. `bos_token` and `eos_token` are the texts the
/// template may insert (NULL means ""). Errors: EMBER_ERR_TEMPLATE (syntax),
/// EMBER_ERR_NULL_POINTER, EMBER_ERR_INVALID_ARGUMENT (not UTF-8).
///
/// # Safety
/// `source` is a NUL-terminated string; `bos_token`/`eos_token` are NULL or NUL-terminated;
/// `out_template` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_chat_template_new(
    source: *const c_char,
    bos_token: *const c_char,
    eos_token: *const c_char,
    out_template: *mut *mut ember_chat_template_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract (all reads below).
        let out = unsafe { arg_mut(out_template, "out_template") }?;
        *out = std::ptr::null_mut();
        // SAFETY: as above.
        let source = unsafe { str_arg(source, "source") }?;
        let optional = |p: *const c_char, name: &str| {
            if p.is_null() {
                Ok("")
            } else {
                // SAFETY: as above.
                unsafe { str_arg(p, name) }
            }
        };
        let bos = optional(bos_token, "bos_token")?;
        let eos = optional(eos_token, "eos_token")?;
        boxed(ChatTemplate::new(source, bos, eos)?, out);
        Ok(())
    })
}

/// Compile the model's own chat template, with its BOS/EOS token texts. EMBER_ERR_NOT_FOUND
/// if the model has none.
///
/// # Safety
/// `model` is NULL or live; `out_template` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_chat_template_from_model(
    model: *const ember_model_t,
    out_template: *mut *mut ember_chat_template_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_template, "out_template") }?;
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let m = &unsafe { arg(model, "model") }?.model;
        let source = m
            .chat_template()
            .ok_or_else(|| Failure::new(EMBER_ERR_NOT_FOUND, "the model has no chat template"))?;
        let tok = m.tokenizer();
        let text = |id: Option<u32>| id.and_then(|id| tok.token_text(id)).unwrap_or("");
        boxed(
            ChatTemplate::new(source, text(tok.bos()), text(tok.eos()))?,
            out,
        );
        Ok(())
    })
}

/// Release a template. NULL is ignored.
///
/// # Safety
/// `tmpl` is NULL or a pointer from `ember_chat_template_new`/`_from_model` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ember_chat_template_free(tmpl: *mut ember_chat_template_t) {
    guard(|| {
        if !tmpl.is_null() {
            // SAFETY: made by `Box::into_raw` in `boxed`, freed once (caller's contract).
            drop(unsafe { Box::from_raw(tmpl) });
        }
        Ok(())
    });
}

/// Render `n_messages` messages; with `add_generation_prompt` the text ends where the
/// assistant's reply begins. Buffer rules as for `ember_detokenize`: `*len_out` always receives
/// the length (without NUL); too small means EMBER_ERR_BUFFER_TOO_SMALL and nothing written.
/// Errors: EMBER_ERR_TEMPLATE (the template raised an error), EMBER_ERR_NULL_POINTER.
///
/// # Safety
/// `tmpl` is NULL or live; `messages` has `n_messages` readable elements whose strings are
/// NUL-terminated; `buf` has `buf_size` writable bytes; `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_chat_template_render(
    tmpl: *const ember_chat_template_t,
    messages: *const ember_chat_message_t,
    n_messages: usize,
    add_generation_prompt: bool,
    buf: *mut c_char,
    buf_size: usize,
    len_out: *mut usize,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract (all reads below).
        let t = unsafe { arg(tmpl, "template") }?;
        // SAFETY: as above.
        let raw = unsafe { slice_arg(messages, n_messages, "messages") }?;
        let messages = raw
            .iter()
            .map(|m| {
                // SAFETY: as above.
                let role = unsafe { str_arg(m.role, "messages[i].role") }?;
                // SAFETY: as above.
                let content = unsafe { str_arg(m.content, "messages[i].content") }?;
                Ok(ChatMessage::new(role, content))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let text = t.template.render(&messages, add_generation_prompt)?;
        // SAFETY: as above.
        unsafe { copy_str_out(text.as_bytes(), buf, buf_size, len_out) }
    })
}
