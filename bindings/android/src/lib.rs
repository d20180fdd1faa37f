//! JNI bindings: the native half of the Java classes `dev.ember.Ember` (a model) and
//! `dev.ember.EmberSession` (a conversation), in bindings/android/ember-android.
//!
//! Handles cross into Java as `long`s holding boxed Rust values. The Java classes own them
//! (`AutoCloseable`), make sure a handle is never used after `close`, and serialize the calls on
//! one session; only `nativeAbort` may run concurrently with `nativeGenerate`, and it touches
//! nothing but an atomic flag. Every entry point catches panics and turns every failure into a
//! Java exception (`dev.ember.EmberException` with the C API's status code), so nothing unwinds
//! into the JVM.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ember_rt::chat::{ChatMessage, ChatTemplate};
use ember_rt::{
    Cascade, ConfidenceScore, Constraint, ConstraintSpec, Consultant, Draft, DraftParams,
    GenerateParams, LoadParams, Model, Sampler, SamplerParams, Session, SessionParams, StopReason,
    Vocabulary,
};
use jni::objects::{JClass, JIntArray, JObject, JObjectArray, JString, JThrowable, JValue};
use jni::sys::{jboolean, jdouble, jfloat, jint, jintArray, jlong, jobject, jstring, JNI_TRUE};
use jni::JNIEnv;

// The C API's status codes, so that Java and C report the same numbers.
#[allow(dead_code, non_camel_case_types)]
#[path = "../../c/src/codes.rs"]
mod codes;
use codes::*;

/// A failed call: a Java exception is already pending, or an ember error to throw.
enum Fail {
    Pending,
    Ember(i32, String),
}

impl From<jni::errors::Error> for Fail {
    fn from(e: jni::errors::Error) -> Self {
        match e {
            jni::errors::Error::JavaException => Fail::Pending,
            other => Fail::Ember(EMBER_ERR_INTERNAL, format!("JNI: {other}")),
        }
    }
}

impl From<ember_rt::Error> for Fail {
    fn from(e: ember_rt::Error) -> Self {
        Fail::Ember(code_of(&e), e.to_string())
    }
}

impl From<ember_rt::tokenizer::TokenizerError> for Fail {
    fn from(e: ember_rt::tokenizer::TokenizerError) -> Self {
        ember_rt::Error::from(e).into()
    }
}

fn invalid(msg: impl Into<String>) -> Fail {
    Fail::Ember(EMBER_ERR_INVALID_ARGUMENT, msg.into())
}

/// Throw `dev.ember.EmberException(code, message)`; if even that fails, a pending error from
/// the JVM (e.g. OutOfMemoryError) is left as it is.
fn throw(env: &mut JNIEnv, code: i32, message: &str) {
    if env.exception_check().unwrap_or(true) {
        return;
    }
    let Ok(msg) = env.new_string(message) else {
        return;
    };
    if let Ok(obj) = env.new_object(
        "dev/ember/EmberException",
        "(ILjava/lang/String;)V",
        &[JValue::Int(code), JValue::Object(&msg)],
    ) {
        let _ = env.throw(JThrowable::from(obj));
    }
}

/// Run an entry point: catch panics, turn failures into Java exceptions, return `fallback`
/// (ignored by Java, since an exception is pending) on failure.
fn entry<'l, T>(
    env: &mut JNIEnv<'l>,
    fallback: T,
    body: impl FnOnce(&mut JNIEnv<'l>) -> Result<T, Fail>,
) -> T {
    match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(v)) => v,
        Ok(Err(Fail::Pending)) => fallback,
        Ok(Err(Fail::Ember(code, msg))) => {
            throw(env, code, &msg);
            fallback
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("unknown panic");
            throw(
                env,
                EMBER_ERR_INTERNAL,
                &format!("internal error (panic): {what}"),
            );
            fallback
        }
    }
}

/// A model handle: the model plus its compiled chat template, made on first use.
struct JniModel {
    model: Arc<Model>,
    template: OnceLock<Result<ChatTemplate, (i32, String)>>,
}

/// A session handle. `abort` is shared with the running generation; everything else is used
/// by one Java thread at a time (the Java class is synchronized), the mutex makes that sound
/// even if it were not.
struct JniSession {
    session: Mutex<Session>,
    abort: Arc<AtomicBool>,
    /// For constrained generation: the vocabulary's token trie (built on first use) and the
    /// last constraint compiled, reused (restarted) while the options ask for the same one.
    vocabulary: OnceLock<Arc<Vocabulary>>,
    last_constraint: Mutex<Option<(ConstraintSpec, Constraint)>>,
    /// `useDraft` / `useConsultant`; the Java class serializes them with generation.
    draft: Mutex<Option<Draft>>,
    cascade: Mutex<Option<Cascade>>,
    /// How the session was made: the draft's and the consultant's sessions copy it.
    params: SessionParams,
}

/// The value inside a mutex whose holder panicked: the Java class serializes the calls, so
/// the lock is only ever contended after a caught panic.
fn unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl JniSession {
    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| {
            // A panic mid-call may leave the cache inconsistent: start over.
            let mut g = p.into_inner();
            g.reset();
            self.session.clear_poison();
            g
        })
    }
}

/// # Safety
/// `handle` is 0 or a live pointer made by `nativeLoad` (the Java class guarantees it).
unsafe fn model_ref<'a>(handle: jlong) -> Result<&'a JniModel, Fail> {
    // SAFETY: the caller's contract.
    unsafe { (handle as *const JniModel).as_ref() }
        .ok_or_else(|| Fail::Ember(EMBER_ERR_NULL_POINTER, "model is closed".into()))
}

/// # Safety
/// `handle` is 0 or a live pointer made by `nativeNew` (the Java class guarantees it).
unsafe fn session_ref<'a>(handle: jlong) -> Result<&'a JniSession, Fail> {
    // SAFETY: the caller's contract.
    unsafe { (handle as *const JniSession).as_ref() }
        .ok_or_else(|| Fail::Ember(EMBER_ERR_NULL_POINTER, "session is closed".into()))
}

fn java_string(env: &mut JNIEnv, s: &JString, what: &str) -> Result<String, Fail> {
    if s.is_null() {
        return Err(Fail::Ember(
            EMBER_ERR_NULL_POINTER,
            format!("{what} is null"),
        ));
    }
    Ok(env.get_string(s)?.into())
}

/// A Java `String[]` (null: none).
fn java_strings(env: &mut JNIEnv, arr: &JObjectArray, what: &str) -> Result<Vec<String>, Fail> {
    let mut out = Vec::new();
    if !arr.is_null() {
        for i in 0..env.get_array_length(arr)? {
            let s = JString::from(env.get_object_array_element(arr, i)?);
            out.push(java_string(env, &s, what)?);
            env.delete_local_ref(s)?;
        }
    }
    Ok(out)
}

fn new_jstring(env: &mut JNIEnv, s: &str) -> Result<jstring, Fail> {
    Ok(env.new_string(s)?.into_raw())
}

fn ids_from_java(env: &mut JNIEnv, arr: &JIntArray) -> Result<Vec<u32>, Fail> {
    if arr.is_null() {
        return Err(Fail::Ember(
            EMBER_ERR_NULL_POINTER,
            "token array is null".into(),
        ));
    }
    let n = env.get_array_length(arr)? as usize;
    let mut buf = vec![0 as jint; n];
    env.get_int_array_region(arr, 0, &mut buf)?;
    buf.into_iter()
        .map(|v| u32::try_from(v).map_err(|_| invalid(format!("negative token id {v}"))))
        .collect()
}

fn ids_to_java(env: &mut JNIEnv, ids: &[u32]) -> Result<jintArray, Fail> {
    let arr = env.new_int_array(ids.len() as jint)?;
    let buf: Vec<jint> = ids.iter().map(|&t| t as jint).collect();
    env.set_int_array_region(&arr, 0, &buf)?;
    Ok(arr.into_raw())
}

fn non_negative(v: jint, what: &str) -> Result<usize, Fail> {
    usize::try_from(v).map_err(|_| invalid(format!("{what} must not be negative ({v})")))
}

// ------------------------------------------------------------------------------- Ember (model)

#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeVersion<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
) -> jstring {
    entry(&mut env, std::ptr::null_mut(), |env| {
        new_jstring(env, env!("CARGO_PKG_VERSION"))
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeLoad<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    path: JString<'l>,
    use_mmap: jboolean,
    listener: JObject<'l>,
) -> jlong {
    entry(&mut env, 0, |env| {
        let path = java_string(env, &path, "path")?;
        let mut java_failed = false;
        let loaded = Model::load_with_progress(
            &path,
            &LoadParams {
                use_mmap: use_mmap == JNI_TRUE,
            },
            |p| {
                if listener.is_null() {
                    return true;
                }
                match env
                    .call_method(&listener, "onProgress", "(F)Z", &[JValue::Float(p)])
                    .and_then(|v| v.z())
                {
                    Ok(go_on) => go_on,
                    Err(_) => {
                        java_failed = true;
                        false
                    }
                }
            },
        );
        if java_failed {
            return Err(Fail::Pending);
        }
        let handle = Box::new(JniModel {
            model: Arc::new(loaded?),
            template: OnceLock::new(),
        });
        Ok(Box::into_raw(handle) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeFree<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
) {
    entry(&mut env, (), |_| {
        if handle != 0 {
            // SAFETY: made by `Box::into_raw` in nativeLoad; the Java class frees it once.
            drop(unsafe { Box::from_raw(handle as *mut JniModel) });
        }
        Ok(())
    })
}

/// Model facts as a string: 0 architecture, 1 name (null if none), 2 chat template (null if
/// none).
#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeString<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    which: jint,
) -> jstring {
    entry(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: the Java class passes a live handle.
        let m = &unsafe { model_ref(handle) }?.model;
        let s = match which {
            0 => Some(m.arch().config.variant.name()),
            1 => m.name(),
            2 => m.chat_template(),
            _ => return Err(invalid(format!("unknown string {which}"))),
        };
        match s {
            Some(s) => new_jstring(env, s),
            None => Ok(std::ptr::null_mut()),
        }
    })
}

/// Model numbers: 0 parameter count, 1 training context, 2 vocabulary size, 3 file size,
/// 4 BOS id (-1 if none), 5 EOS id (-1 if none).
#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeNumber<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    which: jint,
) -> jlong {
    entry(&mut env, 0, |_| {
        // SAFETY: the Java class passes a live handle.
        let m = &unsafe { model_ref(handle) }?.model;
        let tok = |t: Option<u32>| t.map_or(-1, i64::from);
        Ok(match which {
            0 => m.n_params() as i64,
            1 => m.n_ctx_train() as i64,
            2 => m.tokenizer().n_vocab() as i64,
            3 => m.file_size() as i64,
            4 => tok(m.tokenizer().bos()),
            5 => tok(m.tokenizer().eos()),
            _ => return Err(invalid(format!("unknown number {which}"))),
        })
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeTokenize<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    text: JString<'l>,
    add_special: jboolean,
    parse_special: jboolean,
) -> jintArray {
    entry(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: the Java class passes a live handle.
        let m = &unsafe { model_ref(handle) }?.model;
        let text = java_string(env, &text, "text")?;
        let ids =
            m.tokenizer()
                .encode(&text, add_special == JNI_TRUE, parse_special == JNI_TRUE)?;
        ids_to_java(env, &ids)
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeDetokenize<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    ids: JIntArray<'l>,
    remove_special: jboolean,
    unparse_special: jboolean,
) -> jstring {
    entry(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: the Java class passes a live handle.
        let m = &unsafe { model_ref(handle) }?.model;
        let ids = ids_from_java(env, &ids)?;
        let bytes = m.tokenizer().detokenize(
            &ids,
            remove_special == JNI_TRUE,
            unparse_special == JNI_TRUE,
        )?;
        // Java strings hold text: a token boundary inside a character shows as U+FFFD.
        new_jstring(env, &String::from_utf8_lossy(&bytes))
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_ember_Ember_nativeApplyChatTemplate<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    roles: JObjectArray<'l>,
    contents: JObjectArray<'l>,
    add_generation_prompt: jboolean,
) -> jstring {
    entry(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: the Java class passes a live handle.
        let h = unsafe { model_ref(handle) }?;
        let template = h
            .template
            .get_or_init(|| {
                let m = &h.model;
                let source = m.chat_template().ok_or((
                    EMBER_ERR_NOT_FOUND,
                    "the model has no chat template".to_string(),
                ))?;
                let tok = m.tokenizer();
                let text = |id: Option<u32>| id.and_then(|id| tok.token_text(id)).unwrap_or("");
                ChatTemplate::new(source, text(tok.bos()), text(tok.eos()))
                    .map_err(|e| (code_of(&e), e.to_string()))
            })
            .as_ref()
            .map_err(|(code, msg)| Fail::Ember(*code, msg.clone()))?;
        let n = env.get_array_length(&roles)?;
        if env.get_array_length(&contents)? != n {
            return Err(invalid("roles and contents differ in length"));
        }
        let mut messages = Vec::with_capacity(n as usize);
        for i in 0..n {
            let role = JString::from(env.get_object_array_element(&roles, i)?);
            let content = JString::from(env.get_object_array_element(&contents, i)?);
            messages.push(ChatMessage::new(
                java_string(env, &role, "role")?,
                java_string(env, &content, "content")?,
            ));
            env.delete_local_ref(role)?;
            env.delete_local_ref(content)?;
        }
        let text = template.render(&messages, add_generation_prompt == JNI_TRUE)?;
        new_jstring(env, &text)
    })
}

// ------------------------------------------------------------------------------ EmberSession

#[no_mangle]
pub extern "system" fn Java_dev_ember_EmberSession_nativeNew<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    model: jlong,
    n_ctx: jint,
    n_batch: jint,
    n_threads: jint,
    device: jint,
    draft_max: jint,
) -> jlong {
    entry(&mut env, 0, |_| {
        // SAFETY: the Java class passes a live handle.
        let m = unsafe { model_ref(model) }?;
        // Same device numbers as the C API: 0 auto, 1 CPU, 2 GPU.
        let device = match device {
            0 => ember_rt::DeviceChoice::Auto,
            1 => ember_rt::DeviceChoice::Cpu,
            2 => ember_rt::DeviceChoice::Gpu,
            d => return Err(invalid(format!("unknown device {d}"))),
        };
        let draft_max = non_negative(draft_max, "draftMax")?;
        if draft_max > 64 {
            return Err(invalid(format!("draftMax {draft_max} (at most 64)")));
        }
        let params = SessionParams {
            n_ctx: non_negative(n_ctx, "contextLength")?,
            n_batch: non_negative(n_batch, "batchSize")?,
            n_threads: non_negative(n_threads, "threads")?,
            logits_all: false,
            logits_tail: draft_max + 1,
            device,
        };
        let session = Session::new(m.model.clone(), &params)?;
        let handle = Box::new(JniSession {
            session: Mutex::new(session),
            abort: Arc::new(AtomicBool::new(false)),
            vocabulary: OnceLock::new(),
            last_constraint: Mutex::new(None),
            draft: Mutex::new(None),
            cascade: Mutex::new(None),
            params,
        });
        Ok(Box::into_raw(handle) as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_ember_EmberSession_nativeFree<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
) {
    entry(&mut env, (), |_| {
        if handle != 0 {
            // SAFETY: made by `Box::into_raw` in nativeNew; the Java class frees it once, after
            // any running call has returned.
            drop(unsafe { Box::from_raw(handle as *mut JniSession) });
        }
        Ok(())
    })
}

/// Session numbers: 0 tokens in the cache, 1 context length.
#[no_mangle]
pub extern "system" fn Java_dev_ember_EmberSession_nativeNumber<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    which: jint,
) -> jint {
    entry(&mut env, 0, |_| {
        // SAFETY: the Java class passes a live handle.
        let s = unsafe { session_ref(handle) }?.lock();
        let n = match which {
            0 => s.n_past(),
            1 => s.n_ctx(),
            _ => return Err(invalid(format!("unknown number {which}"))),
        };
        Ok(jint::try_from(n).unwrap_or(jint::MAX))
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_ember_EmberSession_nativeReset<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
) {
    entry(&mut env, (), |_| {
        // SAFETY: the Java class passes a live handle.
        unsafe { session_ref(handle) }?.lock().reset();
        Ok(())
    })
}

/// Draft with `draft_model` (0: stop drafting) up to `max_tokens` per step.
#[no_mangle]
pub extern "system" fn Java_dev_ember_EmberSession_nativeSetDraft<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    draft_model: jlong,
    max_tokens: jint,
) {
    entry(&mut env, (), |_| {
        // SAFETY: the Java class passes a live handle.
        let h = unsafe { session_ref(handle) }?;
        let mut slot = unpoisoned(&h.draft);
        *slot = None;
        if draft_model == 0 {
            return Ok(());
        }
        // SAFETY: the Java class passes a live model handle.
        let m = unsafe { model_ref(draft_model) }?;
        let target = h.lock();
        let session = Session::new(
            m.model.clone(),
            &SessionParams {
                n_ctx: target.n_ctx(),
                logits_tail: 1,
                ..h.params.clone()
            },
        )?;
        let params = DraftParams {
            max: non_negative(max_tokens, "maxTokens")?,
            ..DraftParams::default()
        };
        *slot = Some(Draft::new(session, &target, params)?);
        Ok(())
    })
}

/// Consult `model` (0: stop consulting) below `threshold` of mean token probability.
#[no_mangle]
pub extern "system" fn Java_dev_ember_EmberSession_nativeSetConsultant<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    model: jlong,
    threshold: jdouble,
) {
    entry(&mut env, (), |_| {
        // SAFETY: the Java class passes a live handle.
        let h = unsafe { session_ref(handle) }?;
        let mut slot = unpoisoned(&h.cascade);
        *slot = None;
        if model == 0 {
            return Ok(());
        }
        // SAFETY: the Java class passes a live model handle.
        let m = unsafe { model_ref(model) }?;
        let session = Session::new(
            m.model.clone(),
            &SessionParams {
                logits_tail: 1,
                ..h.params.clone()
            },
        )?;
        let cascade = Cascade::new(Consultant::local(session), threshold, ConfidenceScore::Mean)?;
        *slot = Some(cascade);
        Ok(())
    })
}

/// Callable from any thread while `nativeGenerate` runs: only sets the atomic flag.
#[no_mangle]
pub extern "system" fn Java_dev_ember_EmberSession_nativeAbort<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
) {
    entry(&mut env, (), |_| {
        // SAFETY: the Java class passes a live handle (it frees only after calls return).
        unsafe { session_ref(handle) }?
            .abort
            .store(true, Ordering::Relaxed);
        Ok(())
    })
}

/// Generate from `prompt` ids with a fresh sampler; returns a `dev.ember.Generation`.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // one JNI call carries all options: fewer crossings
pub extern "system" fn Java_dev_ember_EmberSession_nativeGenerate<'l>(
    mut env: JNIEnv<'l>,
    _cls: JClass<'l>,
    handle: jlong,
    prompt: JIntArray<'l>,
    max_tokens: jint,
    stop: JObjectArray<'l>,
    ignore_eos: jboolean,
    temperature: jfloat,
    top_k: jint,
    top_p: jfloat,
    min_p: jfloat,
    repeat_penalty: jfloat,
    penalty_last_n: jint,
    seed: jlong,
    constraint_kind: jint,
    constraint_text: JString<'l>,
    choices: JObjectArray<'l>,
    callback: JObject<'l>,
) -> jobject {
    entry(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: the Java class passes a live handle.
        let h = unsafe { session_ref(handle) }?;
        let prompt = ids_from_java(env, &prompt)?;
        let stops = java_strings(env, &stop, "stop string")?;
        let spec = match constraint_kind {
            -1 => None,
            0 => Some(ConstraintSpec::JsonSchema(java_string(
                env,
                &constraint_text,
                "jsonSchema",
            )?)),
            1 => Some(ConstraintSpec::JsonAny),
            2 => Some(ConstraintSpec::Regex(java_string(
                env,
                &constraint_text,
                "regex",
            )?)),
            3 => Some(ConstraintSpec::Grammar(java_string(
                env,
                &constraint_text,
                "grammar",
            )?)),
            4 => Some(ConstraintSpec::Choices(java_strings(
                env, &choices, "choice",
            )?)),
            k => return Err(invalid(format!("unknown constraint kind {k}"))),
        };
        let mut session = h.lock();
        let mut last = h.last_constraint.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(spec) = &spec {
            match last.as_mut() {
                Some((s, c)) if s == spec => c.reset()?,
                _ => {
                    *last = None;
                    let vocabulary = Vocabulary::cached(&h.vocabulary, session.model())?;
                    *last = Some((spec.clone(), Constraint::new(spec, &vocabulary)?));
                }
            }
        }
        let constraint = match (&spec, last.as_mut()) {
            (Some(_), Some((_, c))) => Some(c),
            _ => None,
        };
        let n_vocab = session.model().tokenizer().n_vocab();
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ember_rt::Error::InvalidToken { id: bad, n_vocab }.into());
        }
        let mut sampler = Sampler::new(
            SamplerParams {
                temperature,
                top_k: non_negative(top_k, "topK")?,
                top_p,
                min_p,
                repeat_penalty,
                frequency_penalty: 0.0,
                presence_penalty: 0.0,
                penalty_last_n: non_negative(penalty_last_n, "penaltyLastN")?,
                seed: seed as u64,
            },
            n_vocab,
        )?;
        let params = GenerateParams {
            max_tokens: non_negative(max_tokens, "maxTokens")?,
            stop: stops,
            ignore_eos: ignore_eos == JNI_TRUE,
            abort: Some(h.abort.clone()),
            logprobs: false,
        };
        let mut draft = unpoisoned(&h.draft);
        let mut cascade = unpoisoned(&h.cascade);
        let hybrids = [constraint.is_some(), draft.is_some(), cascade.is_some()];
        if hybrids.iter().filter(|&&on| on).count() > 1 {
            return Err(invalid(
                "a constraint, a draft and a consultant cannot be combined yet",
            ));
        }
        let mut java_failed = false;
        let mut stream = |text: &str| {
            if callback.is_null() {
                return true;
            }
            if java_failed {
                return false;
            }
            let result = env.new_string(text).and_then(|s| {
                let r = env
                    .call_method(
                        &callback,
                        "onText",
                        "(Ljava/lang/String;)Z",
                        &[JValue::Object(&s)],
                    )
                    .and_then(|v| v.z());
                // One local reference per piece would overflow the JVM's table on long
                // generations: free it now.
                let _ = env.delete_local_ref(s);
                r
            });
            match result {
                Ok(go_on) => go_on,
                Err(_) => {
                    java_failed = true;
                    false
                }
            }
        };
        let mut consulted = (false, 0.0);
        let outcome = if let Some(d) = draft.as_mut() {
            session.generate_speculative(&prompt, &mut sampler, &params, d, &mut stream)
        } else if let Some(c) = cascade.as_mut() {
            c.generate_in_context(&mut session, &mut sampler, &prompt, &params)
                .map(|o| {
                    consulted = (o.escalated, o.confidence);
                    if !o.generation.text.is_empty() {
                        stream(&o.generation.text);
                    }
                    o.generation
                })
        } else {
            session.generate_constrained(&prompt, &mut sampler, &params, constraint, &mut stream)
        };
        h.abort.store(false, Ordering::Relaxed);
        if java_failed {
            return Err(Fail::Pending);
        }
        let gen = outcome?;
        let tokens = ids_to_java(env, &gen.tokens)?;
        // SAFETY: `tokens` was just made by `ids_to_java` and is a live local reference.
        let tokens = unsafe { JObject::from_raw(tokens) };
        let text = env.new_string(&gen.text)?;
        let stop_reason = match gen.stop_reason {
            StopReason::MaxTokens => 0,
            StopReason::EndOfGeneration => 1,
            StopReason::StopString => 2,
            StopReason::Callback => 3,
            StopReason::Aborted => 4,
            StopReason::ContextFull => 5,
        };
        let obj = env.new_object(
            "dev/ember/Generation",
            "([ILjava/lang/String;IIDDIIZD)V",
            &[
                JValue::Object(&tokens),
                JValue::Object(&text),
                JValue::Int(stop_reason),
                JValue::Int(jint::try_from(gen.n_prompt_eval).unwrap_or(jint::MAX)),
                JValue::Double(gen.prompt_time.as_secs_f64() * 1e3),
                JValue::Double(gen.generate_time.as_secs_f64() * 1e3),
                JValue::Int(jint::try_from(gen.drafted).unwrap_or(jint::MAX)),
                JValue::Int(jint::try_from(gen.draft_accepted).unwrap_or(jint::MAX)),
                JValue::Bool(consulted.0.into()),
                JValue::Double(consulted.1),
            ],
        )?;
        Ok(obj.into_raw())
    })
}
