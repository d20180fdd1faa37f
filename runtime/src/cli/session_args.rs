//! Flags shared by the commands that open one session (`run`, `chat`): the model and engine,
//! and the sampler.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ember::{LoadParams, Model, SamplerParams, Session, SessionParams};

/// A `-m` value: a model file or folder, or the name of a model in the registry (`ember list`)
/// that `ember pull` has fetched into the models cache.
pub fn model_arg(s: &str) -> Result<PathBuf, String> {
    #[cfg(feature = "net")]
    return ember::pull::resolve_model(s).map_err(|e| e.to_string());
    #[cfg(not(feature = "net"))]
    Ok(PathBuf::from(s))
}

#[derive(Args)]
pub struct ModelArgs {
    /// Model: a GGUF file, or a registry name (`ember list`, `ember pull NAME`).
    #[arg(short = 'm', long = "model", value_parser = model_arg)]
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
    #[arg(long, value_parser = model_arg)]
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

/// Load the model and open a session as the flags say (notes the engine on stderr), one that
/// scores the last `logits_tail` tokens of a pass (1, or a draft's verification).
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

/// A cascade (`run`, `chat`, `eval`): a larger consultant answers when the primary is unsure
/// (docs/cascade.md).
#[derive(Args, Clone)]
pub struct ConsultantArgs {
    /// A larger model asked when the primary is unsure: a model file, or an OpenAI-compatible
    /// endpoint (http://host:port/v1), to which the prompt then leaves this device.
    #[arg(long, value_name = "FILE|URL")]
    pub consultant: Option<String>,
    /// Ask the consultant when the primary's confidence (0..=1) is below this; `ember eval
    /// --consultant` measures which threshold a task needs.
    #[arg(long, default_value_t = 0.7, value_name = "T")]
    pub escalate_below: f64,
    /// The confidence score: mean (geometric mean of the answer's token probabilities) or min
    /// (its least likely token).
    #[arg(long, default_value = "mean")]
    pub confidence: ember::ConfidenceScore,
    /// The `model` an endpoint consultant is asked for.
    #[arg(long, value_name = "NAME")]
    pub consultant_model: Option<String>,
    /// Seconds an endpoint consultant may take to answer.
    #[arg(long, default_value_t = 300, value_name = "S")]
    pub consultant_timeout: u64,
}

/// Where the consultant is.
pub enum ConsultantSource {
    Local(PathBuf),
    Remote(String),
}

impl ConsultantArgs {
    pub fn source(&self) -> Option<ConsultantSource> {
        let c = self.consultant.as_ref()?;
        // Any scheme is a URL (and an endpoint refuses what is not http or https).
        Some(if c.contains("://") {
            ConsultantSource::Remote(c.clone())
        } else {
            ConsultantSource::Local(PathBuf::from(c))
        })
    }

    /// The endpoint at `url`, configured by the flags.
    #[cfg(feature = "net")]
    pub fn endpoint(&self, url: &str) -> Result<ember::cascade::remote::Endpoint, ember::Error> {
        ember::cascade::remote::Endpoint::new(
            url,
            self.consultant_model.clone(),
            std::time::Duration::from_secs(self.consultant_timeout.max(1)),
        )
    }

    /// The cascade for `run` and `chat`, with a local consultant on the primary's engine
    /// settings, or None without `--consultant`.
    pub fn load(&self, args: &ModelArgs) -> Result<Option<ember::Cascade>, ember::Error> {
        let consultant = match self.source() {
            None => return Ok(None),
            Some(ConsultantSource::Local(path)) => {
                let path =
                    model_arg(&path.to_string_lossy()).map_err(ember::Error::InvalidArgument)?;
                let model = Arc::new(Model::load(
                    &path,
                    &LoadParams {
                        use_mmap: !args.no_mmap,
                    },
                )?);
                let session = Session::new(
                    model,
                    &SessionParams {
                        n_ctx: args.ctx,
                        n_batch: args.batch,
                        n_threads: args.threads,
                        logits_all: false,
                        logits_tail: 1,
                        device: args.device,
                    },
                )?;
                ember::Consultant::local(session)
            }
            #[cfg(feature = "net")]
            Some(ConsultantSource::Remote(url)) => ember::Consultant::remote(self.endpoint(&url)?),
            #[cfg(not(feature = "net"))]
            Some(ConsultantSource::Remote(url)) => {
                return Err(ember::Error::InvalidArgument(format!(
                    "--consultant {url}: this build has no network support (cargo feature `net`)"
                )))
            }
        };
        ember::Cascade::new(consultant, self.escalate_below, self.confidence).map(Some)
    }
}

/// The line ember prints whenever a prompt leaves the device.
pub fn leaving_device_note(destination: &str, confidence: f64, threshold: f64) {
    eprintln!(
        "[ember] confidence {confidence:.3} < {threshold}: sending the prompt to {destination} (it leaves this device)"
    );
}
