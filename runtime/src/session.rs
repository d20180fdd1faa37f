//! A session: one conversation's KV cache, compute buffers and worker threads over a shared model.

use std::sync::Arc;

use ember_kernels::ThreadPool;

use crate::arch::llama::State;
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
}

impl Default for SessionParams {
    fn default() -> Self {
        SessionParams {
            n_ctx: 4096,
            n_batch: 256,
            n_threads: 0,
            logits_all: false,
        }
    }
}

/// The state of one conversation. Not shared between threads; create one per conversation.
pub struct Session {
    model: Arc<Model>,
    pool: ThreadPool,
    state: State,
    /// Tokens whose keys and values are in the cache, in order.
    tokens: Vec<u32>,
    /// Row of `state.logits` holding the most recent token's logits.
    last_row: usize,
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
        let state = State::new(model.arch(), n_ctx, n_batch, n_threads, params.logits_all)?;
        Ok(Session {
            pool: ThreadPool::new(n_threads),
            state,
            tokens: Vec::with_capacity(n_ctx),
            last_row: 0,
            model,
        })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Context length.
    pub fn n_ctx(&self) -> usize {
        self.state.n_ctx
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
        self.state.n_batch
    }

    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// Bytes of KV cache and compute buffers.
    pub fn state_bytes(&self) -> usize {
        self.state.bytes()
    }

    /// Forget everything in the KV cache.
    pub fn reset(&mut self) {
        self.tokens.clear();
    }

    /// Drop the cache after the first `n` tokens (keep a shared prefix, re-evaluate the rest).
    pub fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
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
        mut on_logits: impl FnMut(usize, &[f32]),
    ) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("nothing to evaluate".into()));
        }
        let needed = self.tokens.len() + tokens.len();
        if needed > self.state.n_ctx {
            return Err(Error::ContextFull {
                n_ctx: self.state.n_ctx,
                needed,
            });
        }
        let n_vocab = self.model.arch().config.n_vocab;
        let mut done = 0;
        for batch in tokens.chunks(self.state.n_batch) {
            let pos = self.tokens.len();
            self.model.arch().forward(
                self.model.weight_data(),
                &self.pool,
                &mut self.state,
                batch,
                pos,
            )?;
            self.tokens.extend_from_slice(batch);
            self.last_row = if self.state.logits_all {
                batch.len() - 1
            } else {
                0
            };
            if self.state.logits_all {
                for (i, row) in self
                    .state
                    .logits
                    .chunks_exact(n_vocab)
                    .take(batch.len())
                    .enumerate()
                {
                    on_logits(done + i, row);
                }
            } else if done + batch.len() == tokens.len() {
                on_logits(tokens.len() - 1, &self.state.logits[..n_vocab]);
            }
            done += batch.len();
        }
        Ok(())
    }

    /// The logits left by the last `eval` (last token).
    pub fn logits(&self) -> &[f32] {
        let n_vocab = self.model.arch().config.n_vocab;
        &self.state.logits[self.last_row * n_vocab..(self.last_row + 1) * n_vocab]
    }
}
