//! Flags shared by the commands that open one session (`run`, `chat`): the model and engine,
//! and the sampler.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ember::{LoadParams, Model, SamplerParams, Session, SessionParams};

#[derive(Args)]
pub struct ModelArgs {
    /// Model file (GGUF).
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// Worker threads (0: one per core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    pub threads: usize,
    /// Context length (0: the model's training context).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    pub ctx: usize,
    /// Prompt tokens per forward pass.
    #[arg(short = 'b', long = "batch-size", default_value_t = 256)]
    pub batch: usize,
    /// Read the file into memory instead of mapping it.
    #[arg(long)]
    pub no_mmap: bool,
    /// Engine: cpu (ember's kernels), gpu (burn on wgpu), auto (a hardware GPU if there is
    /// one, else cpu) or burn-cpu (the GPU graph on burn-ndarray, a reference).
    #[arg(long, default_value = "cpu")]
    pub device: ember::DeviceChoice,
}

#[derive(Args)]
pub struct SamplingArgs {
    /// Temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temperature: f32,
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f32,
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f32,
    /// RNG seed (default: random).
    #[arg(short = 's', long)]
    pub seed: Option<u64>,
}

impl SamplingArgs {
    pub fn params(&self) -> SamplerParams {
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        SamplerParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            penalty_last_n: self.repeat_last_n,
            seed,
        }
    }
}

/// Speculative decoding (`run`, `chat`, `bench`): a small model of the target's family drafts.
#[derive(Args, Clone, Default)]
pub struct DraftArgs {
    /// Draft model (GGUF) sharing the target's vocabulary, e.g. Qwen2.5-Coder-0.5B for -1.5B.
    #[arg(long)]
    pub draft: Option<PathBuf>,
    /// Most tokens drafted per step (adapted to the acceptance rate below it).
    #[arg(long, default_value_t = 8)]
    pub draft_max: usize,
    /// Stop a step's draft once the draft model is less sure than this of its token.
    #[arg(long, default_value_t = 0.5)]
    pub draft_p_min: f32,
}

impl DraftArgs {
    /// Rows of logits the target session must keep per pass.
    pub fn logits_tail(&self) -> usize {
        if self.draft.is_some() {
            self.draft_max.max(1) + 1
        } else {
            1
        }
    }

    /// The draft, on the target's engine settings, or None without `--draft`.
    pub fn load(
        &self,
        args: &ModelArgs,
        target: &Session,
    ) -> Result<Option<ember::Draft>, ember::Error> {
        let Some(path) = &self.draft else {
            return Ok(None);
        };
        let model = Arc::new(Model::load(
            path,
            &LoadParams {
                use_mmap: !args.no_mmap,
            },
        )?);
        let session = Session::new(
            model,
            &SessionParams {
                n_ctx: target.n_ctx(),
                n_batch: args.batch,
                n_threads: args.threads,
                logits_all: false,
                logits_tail: 1,
                device: args.device,
            },
        )?;
        let params = ember::DraftParams {
            max: self.draft_max,
            p_min: self.draft_p_min,
            ..ember::DraftParams::default()
        };
        ember::Draft::new(session, target, params).map(Some)
    }
}

/// Load the model and open a session as the flags say; notes the engine on stderr.
pub fn load(args: &ModelArgs) -> Result<(Arc<Model>, Session), ember::Error> {
    load_scoring(args, 1)
}

/// [`load`] with a session that scores the last `logits_tail` tokens of a pass (a draft's
/// verification).
pub fn load_scoring(
    args: &ModelArgs,
    logits_tail: usize,
) -> Result<(Arc<Model>, Session), ember::Error> {
    let model = Arc::new(Model::load(
        &args.model,
        &LoadParams {
            use_mmap: !args.no_mmap,
        },
    )?);
    let params = SessionParams {
        n_ctx: args.ctx,
        n_batch: args.batch,
        n_threads: args.threads,
        logits_all: false,
        logits_tail,
        device: args.device,
    };
    let session = Session::new(model.clone(), &params)?;
    if let Some(note) = session.device_note() {
        eprintln!("ember: {note}");
    } else if args.device != ember::DeviceChoice::Cpu {
        eprintln!("ember: running on {}", session.device());
    }
    Ok((model, session))
}

/// Output constraints (`run`; docs/constraints.md): at most one.
#[derive(Args, Clone, Default)]
#[group(multiple = false)]
pub struct ConstraintArgs {
    /// The output is a JSON value valid under this JSON Schema (a file, or the schema itself).
    #[arg(long = "json-schema", value_name = "FILE|JSON")]
    json_schema: Option<String>,
    /// The output is any JSON value.
    #[arg(long = "json-any")]
    json_any: bool,
    /// The output matches this regular expression in full.
    #[arg(long, value_name = "RE")]
    regex: Option<String>,
    /// The output follows this grammar file (llguidance's Lark syntax).
    #[arg(long, value_name = "FILE")]
    grammar: Option<PathBuf>,
    /// The output is exactly one of these, comma separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    choices: Vec<String>,
}

impl ConstraintArgs {
    /// The constraint asked for, if any (files read here).
    pub fn spec(&self) -> Result<Option<ember::ConstraintSpec>, String> {
        use ember::ConstraintSpec as C;
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
        };
        Ok(if let Some(s) = &self.json_schema {
            let path = std::path::Path::new(s);
            let text = if !s.trim_start().starts_with('{') && path.is_file() {
                read(path)?
            } else {
                s.clone()
            };
            Some(C::JsonSchema(text))
        } else if self.json_any {
            Some(C::JsonAny)
        } else if let Some(r) = &self.regex {
            Some(C::Regex(r.clone()))
        } else if let Some(g) = &self.grammar {
            Some(C::Grammar(read(g)?))
        } else if !self.choices.is_empty() {
            Some(C::Choices(self.choices.clone()))
        } else {
            None
        })
    }
}
