//! ember: on-device LLM inference runtime.
//!
//! ```text
//! Model::load(path) ──► Session::new(model, params) ──► session.generate(prompt ids, sampler, ..)
//! ```
//! A [`Model`] is a memory-mapped GGUF file plus its parsed config, weight views and tokenizer.
//! A [`Session`] owns a KV cache and every buffer the forward pass needs, planned up front, so the
//! per-token loop allocates nothing.

pub mod arch;
pub mod bench;
pub mod cascade;
pub mod chat;
pub mod constraint;
pub mod device;
mod error;
#[cfg(feature = "eval")]
pub mod eval;
pub mod generate;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod hf;
pub mod model;
pub mod perplexity;
pub mod plan;
#[cfg(feature = "net")]
pub mod pull;
pub mod quantize;
pub mod rss;
pub mod sampling;
pub mod session;
mod shared_mut;
pub mod speculative;
pub mod tokenizer;

pub use cascade::{Cascade, ConfidenceScore, Consultant};
pub use constraint::{Constraint, ConstraintSpec, Vocabulary};
pub use device::DeviceChoice;
pub use error::{Error, Result};
pub use generate::{GenerateParams, Generation, StopReason};
pub use model::{LoadParams, Model};
pub use sampling::{Sampler, SamplerParams};
pub use session::{Session, SessionParams};
pub use speculative::{Draft, DraftParams};
