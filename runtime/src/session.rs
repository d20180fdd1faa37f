//! A session: one conversation's KV cache, compute buffers and worker threads over a shared model.

use std::sync::Arc;

use ember_kernels::ThreadPool;

use crate::arch::cpu::{self, State};
use crate::device::DeviceChoice;
use crate::{Error, Model, Result};

/// How to size a session.
#[derive(Clone, Debug)]
pub struct SessionParams {
    /// Context length in tokens; 0 means the model's training context.
    pub n_ctx: usize,
    /// Tokens per forward pass while reading a prompt.
    pub n_batch: usize,
    /// Worker threads, including the caller's; 0 means one per available core.
    pub n_threads: usize,
    /// Keep the logits of every token of a batch (perplexity), not just the last.
    pub logits_all: bool,
    /// Most trailing tokens of one [`Session::eval_tail`] call that get logits: a draft's
    /// length plus one for speculative verification. 1 is enough otherwise.
    pub logits_tail: usize,
    /// Which engine runs the forward pass.
    pub device: DeviceChoice,
}

impl Default for SessionParams {
    fn default() -> Self {
        SessionParams {
            n_ctx: 4096,
            n_batch: 256,
            n_threads: 0,
            logits_all: false,
            logits_tail: 1,
            device: DeviceChoice::Cpu,
        }
    }
}

/// The engine a session runs on, and its buffers.
enum Engine {
    /// ember's CPU kernels: planned host buffers, a worker pool.
    Cpu { pool: ThreadPool, state: Box<State> },
    /// The burn graph on a wgpu or burn-ndarray device.
    #[cfg(feature = "gpu")]
    Graph {
        weights: Arc<crate::gpu::graph::DeviceWeights>,
        state: Box<crate::gpu::graph::GraphState>,
    },
}

/// The state of one conversation. Not shared between threads; create one per conversation.
pub struct Session {
    model: Arc<Model>,
    engine: Engine,
    /// What runs the forward pass, in words (`cpu (2 threads)`, the GPU adapter's name...).
    device: String,
    /// Why `auto` did not pick a GPU, when it did not.
    device_note: Option<String>,
    /// Tokens whose keys and values are in the cache, in order.
    tokens: Vec<u32>,
    /// Row of `state.logits` holding the most recent token's logits.
    last_row: usize,
    logits_all: bool,
}

impl Session {
    /// Plan every buffer for `params` up front; nothing is allocated per token afterwards.
    pub fn new(model: Arc<Model>, params: &SessionParams) -> Result<Session> {
        let n_ctx = if params.n_ctx == 0 {
            model.n_ctx_train()
        } else {
            params.n_ctx
        };
        if n_ctx == 0 || n_ctx > 1 << 20 {
            return Err(Error::InvalidArgument(format!("context length {n_ctx}")));
        }
        if params.n_batch == 0 {
            return Err(Error::InvalidArgument("batch size 0".into()));
        }
        let n_threads = match params.n_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n if n > 256 => return Err(Error::InvalidArgument(format!("{n} threads"))),
            n => n,
        };
        let n_batch = params.n_batch.min(n_ctx);
        let (engine, device, device_note) = open_engine(&model, params, n_ctx, n_batch, n_threads)?;
        Ok(Session {
            engine,
            device,
            device_note,
            tokens: Vec::with_capacity(n_ctx),
            last_row: 0,
            logits_all: params.logits_all,
            model,
        })
    }

    /// What runs this session's forward pass, in words.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// For `DeviceChoice::Auto`: why the session fell back to the CPU, if it did.
    pub fn device_note(&self) -> Option<&str> {
        self.device_note.as_deref()
    }

    /// Whether the forward pass runs on the burn graph (GPU or burn-ndarray), not the CPU kernels.
    pub fn on_graph(&self) -> bool {
        !matches!(self.engine, Engine::Cpu { .. })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Context length.
    pub fn n_ctx(&self) -> usize {
        match &self.engine {
            Engine::Cpu { state, .. } => state.n_ctx,
            #[cfg(feature = "gpu")]
            Engine::Graph { state, .. } => state.n_ctx,
        }
    }

    /// Expert feed-forwards the CPU engine has run so far (each reads its expert's three
    /// matrices once, however many of the batch's tokens it serves): how a MoE model's reads
    /// can be checked. `None` on the burn engine.
    pub fn experts_run(&self) -> Option<u64> {
        match &self.engine {
            Engine::Cpu { state, .. } => Some(state.experts_run),
            #[cfg(feature = "gpu")]
            Engine::Graph { .. } => None,
        }
    }

    /// Number of tokens in the cache.
    pub fn n_past(&self) -> usize {
        self.tokens.len()
    }

    /// The tokens in the cache.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Most tokens per forward pass.
    pub fn n_batch(&self) -> usize {
        match &self.engine {
            Engine::Cpu { state, .. } => state.n_batch,
            #[cfg(feature = "gpu")]
            Engine::Graph { state, .. } => state.n_batch,
        }
    }

    /// CPU worker threads (1 on the graph engines, whose host side is one thread).
    pub fn n_threads(&self) -> usize {
        match &self.engine {
            Engine::Cpu { pool, .. } => pool.n_threads(),
            #[cfg(feature = "gpu")]
            Engine::Graph { .. } => 1,
        }
    }

    /// Bytes of KV cache and compute buffers (on the device, for the graph engines).
    pub fn state_bytes(&self) -> usize {
        match &self.engine {
            Engine::Cpu { state, .. } => state.bytes(),
            #[cfg(feature = "gpu")]
            Engine::Graph { state, .. } => state.bytes(self.model.arch()),
        }
    }

    /// The logits buffer and how many rows it holds.
    fn logits_rows(&self) -> (&[f32], usize) {
        match &self.engine {
            Engine::Cpu { state, .. } => (&state.logits, state.logit_rows),
            #[cfg(feature = "gpu")]
            Engine::Graph { state, .. } => (&state.logits, state.logit_rows),
        }
    }

    /// Forget everything in the KV cache.
    pub fn reset(&mut self) {
        self.tokens.clear();
    }

    /// Drop the cache after the first `n` tokens (keep a shared prefix, re-evaluate the rest).
    pub fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
    }

    /// Keep the cached tokens `ids` starts with (a shared system prompt, the earlier turns of a
    /// chat), drop the rest, and return how many of `ids` are already in the cache: evaluate
    /// `ids[returned..]` next. At least one token is left to evaluate, for its logits.
    pub fn reuse_prefix(&mut self, ids: &[u32]) -> usize {
        let common = self
            .tokens
            .iter()
            .zip(ids)
            .take_while(|(a, b)| a == b)
            .count();
        let keep = common.min(ids.len().saturating_sub(1));
        self.truncate(keep);
        keep
    }

    /// Append `tokens` to the context and return the logits after the last one.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.eval_each(tokens, |_, _| {})?;
        Ok(self.logits())
    }

    /// Like [`Session::eval`], calling `on_logits(index, logits)` after each batch for every
    /// token whose logits were computed (all of them with `logits_all`, else the last).
    pub fn eval_each(
        &mut self,
        tokens: &[u32],
        on_logits: impl FnMut(usize, &[f32]),
    ) -> Result<()> {
        self.eval_rows(tokens, 1, on_logits)
    }

    /// Append `tokens` and return the logits of the last `n` of them, `n` rows of `n_vocab`
    /// (row `i` predicts the token after `tokens[tokens.len() - n + i]`): one forward pass
    /// scores a whole draft. `n` is at most the session's `logits_tail` and the tokens fit
    /// in one batch.
    pub fn eval_tail(&mut self, tokens: &[u32], n: usize) -> Result<&[f32]> {
        let rows = self.logits_rows().1;
        if n == 0 || n > tokens.len() || n > rows || tokens.len() > self.n_batch() {
            return Err(Error::InvalidArgument(format!(
                "logits of the last {n} of {} tokens (at most {rows} rows, batches of {})",
                tokens.len(),
                self.n_batch()
            )));
        }
        self.eval_rows(tokens, n, |_, _| {})?;
        Ok(self.tail_logits(n))
    }

    /// Most tokens one [`Session::eval_tail`] can score.
    pub fn logit_rows(&self) -> usize {
        self.logits_rows().1
    }

    /// The first `n` rows of logits left by the last [`Session::eval_tail`].
    pub(crate) fn tail_logits(&self, n: usize) -> &[f32] {
        let n_vocab = self.model.arch().config.n_vocab;
        &self.logits_rows().0[..n * n_vocab]
    }

    /// Evaluate `tokens` batch by batch, computing the logits of every token with
    /// `logits_all`, else of the last `tail` tokens of the final batch (the last one of the
    /// others).
    fn eval_rows(
        &mut self,
        tokens: &[u32],
        tail: usize,
        mut on_logits: impl FnMut(usize, &[f32]),
    ) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("nothing to evaluate".into()));
        }
        let needed = self.tokens.len() + tokens.len();
        if needed > self.n_ctx() {
            return Err(Error::ContextFull {
                n_ctx: self.n_ctx(),
                needed,
            });
        }
        let n_vocab = self.model.arch().config.n_vocab;
        let mut done = 0;
        for batch in tokens.chunks(self.n_batch()) {
            let pos = self.tokens.len();
            let arch = self.model.arch();
            let is_last = done + batch.len() == tokens.len();
            let n_out = if self.logits_all {
                batch.len()
            } else if is_last {
                tail.min(batch.len())
            } else {
                1
            };
            match &mut self.engine {
                Engine::Cpu { pool, state } => cpu::forward(
                    arch,
                    self.model.weight_data(),
                    pool,
                    state,
                    batch,
                    pos,
                    n_out,
                )?,
                #[cfg(feature = "gpu")]
                Engine::Graph { weights, state } => crate::gpu::graph::forward(
                    arch,
                    self.model.weight_data(),
                    weights,
                    state,
                    batch,
                    pos,
                    n_out,
                )?,
            }
            self.tokens.extend_from_slice(batch);
            self.last_row = n_out - 1;
            let logits = self.logits_rows().0;
            if self.logits_all {
                for (i, row) in logits.chunks_exact(n_vocab).take(batch.len()).enumerate() {
                    on_logits(done + i, row);
                }
            } else if is_last {
                on_logits(
                    tokens.len() - 1,
                    &logits[(n_out - 1) * n_vocab..n_out * n_vocab],
                );
            }
            done += batch.len();
        }
        Ok(())
    }

    /// The logits left by the last `eval` (last token).
    pub fn logits(&self) -> &[f32] {
        let n_vocab = self.model.arch().config.n_vocab;
        let (logits, _) = self.logits_rows();
        &logits[self.last_row * n_vocab..(self.last_row + 1) * n_vocab]
    }
}

type Opened = (Engine, String, Option<String>);

/// Build the engine `params.device` asks for: the engine, its description, and for `auto` the
/// reason it fell back to the CPU.
fn open_engine(
    model: &Arc<Model>,
    params: &SessionParams,
    n_ctx: usize,
    n_batch: usize,
    n_threads: usize,
) -> Result<Opened> {
    // `auto` is the one choice the environment may settle (`EMBER_DEVICE=cpu`, say, to keep an
    // app off a misbehaving driver without rebuilding it).
    let choice = match (params.device, std::env::var("EMBER_DEVICE")) {
        (DeviceChoice::Auto, Ok(v)) if !v.is_empty() => v
            .parse::<DeviceChoice>()
            .map_err(|e| Error::InvalidArgument(format!("EMBER_DEVICE: {e}")))?,
        (d, _) => d,
    };
    let logit_rows = if params.logits_all {
        n_batch
    } else {
        params.logits_tail.clamp(1, n_batch)
    };
    let cpu = |note: Option<String>| -> Result<Opened> {
        let state = State::new(model.arch(), n_ctx, n_batch, n_threads, logit_rows)?;
        let engine = Engine::Cpu {
            pool: ThreadPool::new(n_threads),
            state: Box::new(state),
        };
        Ok((engine, format!("cpu ({n_threads} threads)"), note))
    };
    #[cfg(feature = "gpu")]
    {
        use crate::gpu;
        let graph =
            |device: &burn::tensor::Device, name: String, hardware: bool| -> Result<Opened> {
                let weights = model.device_weights(device, gpu::matmul_kernel(hardware)?)?;
                let state =
                    gpu::graph::GraphState::new(model.arch(), &weights, n_ctx, n_batch, logit_rows);
                let engine = Engine::Graph {
                    weights,
                    state: Box::new(state),
                };
                Ok((engine, name, None))
            };
        match choice {
            DeviceChoice::Cpu => cpu(None),
            DeviceChoice::BurnCpu => graph(
                &gpu::burn_cpu(),
                "burn-ndarray (CPU reference)".into(),
                false,
            ),
            DeviceChoice::Gpu => {
                let (device, info) = gpu::open_gpu()?;
                graph(
                    &device,
                    format!("gpu: {}", info.describe()),
                    info.is_hardware(),
                )
            }
            DeviceChoice::Auto => match gpu::open_gpu() {
                Ok((device, info)) if info.is_hardware() => {
                    graph(&device, format!("gpu: {}", info.describe()), true)
                }
                Ok((_, info)) => cpu(Some(format!(
                    "the only GPU adapter is a software one ({}): using the CPU",
                    info.describe()
                ))),
                Err(err) => cpu(Some(format!("{err}: using the CPU"))),
            },
        }
    }
    #[cfg(not(feature = "gpu"))]
    match choice {
        DeviceChoice::Cpu => cpu(None),
        DeviceChoice::Auto => cpu(Some(
            "built without the `gpu` feature: using the CPU".into(),
        )),
        DeviceChoice::Gpu | DeviceChoice::BurnCpu => Err(Error::NoDevice(
            "ember was built without the `gpu` feature".into(),
        )),
    }
}
