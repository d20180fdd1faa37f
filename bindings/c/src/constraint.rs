//! Constraints: generation that follows a JSON Schema, a regular expression, a grammar or a
//! fixed set of choices (ember's `Constraint`, compiled once, restarted by every generate call).

use std::ffi::c_char;
use std::sync::{Arc, Mutex, MutexGuard};

use ember_rt::{Constraint, ConstraintSpec, Model};

use crate::args::{arg, arg_mut, exclusive, slice_arg, str_arg};
use crate::model::ember_model_t;
use crate::status::{ember_status_t, guard, Failure};

/// What kind of constraint `ember_constraint_new` compiles. A plain integer.
pub type ember_constraint_kind_t = i32;

/// `text` is a JSON Schema (a JSON document): the output is one JSON value valid under it.
pub const EMBER_CONSTRAINT_JSON_SCHEMA: ember_constraint_kind_t = 0;
/// Any JSON value; `text` is ignored (may be NULL).
pub const EMBER_CONSTRAINT_JSON_ANY: ember_constraint_kind_t = 1;
/// `text` is a regular expression (Rust `regex` syntax) the whole output must match.
pub const EMBER_CONSTRAINT_REGEX: ember_constraint_kind_t = 2;
/// `text` is a context-free grammar in llguidance's Lark-like syntax (docs/constraints.md).
pub const EMBER_CONSTRAINT_GRAMMAR: ember_constraint_kind_t = 3;

/// A compiled constraint for one model. Pass it in `ember_generate_params_t.constraint`: that
/// generation samples only tokens that keep the output inside it and ends when the output is
/// complete. Each generate call starts it over, so one constraint serves many generations, one
/// at a time: a generation using it while another runs fails with EMBER_ERR_BUSY. Use it only
/// with sessions of the model it was compiled for (others fail with EMBER_ERR_INVALID_ARGUMENT).
pub struct ember_constraint_t {
    constraint: Mutex<Constraint>,
    /// The model it was compiled for (its vocabulary keeps it alive anyway).
    model: Arc<Model>,
}

impl ember_constraint_t {
    /// Exclusive access for one generation, or EMBER_ERR_BUSY. A constraint poisoned by a
    /// caught panic is restarted by the generation that takes it next.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Constraint>, Failure> {
        exclusive(&self.constraint, "the constraint", |_| {})
    }

    /// Whether it was compiled for `model`.
    pub(crate) fn is_for(&self, model: &Arc<Model>) -> bool {
        Arc::ptr_eq(&self.model, model)
    }
}

fn compile(
    model: &ember_model_t,
    spec: ConstraintSpec,
    out: &mut *mut ember_constraint_t,
) -> Result<(), Failure> {
    let vocabulary = model.vocabulary()?;
    let constraint = Constraint::new(&spec, &vocabulary)?;
    *out = Box::into_raw(Box::new(ember_constraint_t {
        constraint: Mutex::new(constraint),
        model: model.model.clone(),
    }));
    Ok(())
}

/// Compile a constraint of `kind` from `text` for `model`. The first constraint of a model also
/// builds its token trie (tens of milliseconds; later ones reuse it). On success
/// `*out_constraint` receives it, to be released with `ember_constraint_free`; on failure NULL.
///
/// Errors: EMBER_ERR_INVALID_ARGUMENT (an unknown kind; a schema that is not JSON or uses what
/// the engine does not support; a bad regular expression or grammar: checked here, before any
/// token is generated; text that is not UTF-8), EMBER_ERR_NULL_POINTER.
///
/// # Safety
/// `model` is NULL or live; `text` is NULL or NUL-terminated; `out_constraint` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ember_constraint_new(
    model: *const ember_model_t,
    kind: ember_constraint_kind_t,
    text: *const c_char,
    out_constraint: *mut *mut ember_constraint_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_constraint, "out_constraint") }?;
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: the caller's contract.
        let text = || unsafe { str_arg(text, "text") }.map(str::to_owned);
        let spec = match kind {
            EMBER_CONSTRAINT_JSON_SCHEMA => ConstraintSpec::JsonSchema(text()?),
            EMBER_CONSTRAINT_JSON_ANY => ConstraintSpec::JsonAny,
            EMBER_CONSTRAINT_REGEX => ConstraintSpec::Regex(text()?),
            EMBER_CONSTRAINT_GRAMMAR => ConstraintSpec::Grammar(text()?),
            other => return Err(Failure::invalid(format!("unknown constraint kind {other}"))),
        };
        compile(model, spec, out)
    })
}

/// Compile a constraint whose output is exactly one of `n_choices` strings (at least one).
/// Errors and ownership as `ember_constraint_new`.
///
/// # Safety
/// `model` is NULL or live; `choices` holds `n_choices` NUL-terminated strings;
/// `out_constraint` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ember_constraint_new_choices(
    model: *const ember_model_t,
    choices: *const *const c_char,
    n_choices: usize,
    out_constraint: *mut *mut ember_constraint_t,
) -> ember_status_t {
    guard(|| {
        // SAFETY: the caller's contract.
        let out = unsafe { arg_mut(out_constraint, "out_constraint") }?;
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: the caller's contract.
        let ptrs = unsafe { slice_arg(choices, n_choices, "choices") }?;
        let choices = ptrs
            .iter()
            // SAFETY: the caller's contract: each entry is a NUL-terminated string.
            .map(|&s| unsafe { str_arg(s, "choices[i]") }.map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        compile(model, ConstraintSpec::Choices(choices), out)
    })
}

/// Release a constraint. NULL is ignored.
///
/// # Safety
/// `constraint` is NULL or a pointer from `ember_constraint_new*` not yet freed, not in use.
#[no_mangle]
pub unsafe extern "C" fn ember_constraint_free(constraint: *mut ember_constraint_t) {
    guard(|| {
        if !constraint.is_null() {
            // SAFETY: made by `Box::into_raw` in `compile`, freed once (caller's contract).
            drop(unsafe { Box::from_raw(constraint) });
        }
        Ok(())
    });
}
