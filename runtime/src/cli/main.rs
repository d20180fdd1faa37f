//! `ember`: run, chat with and inspect GGUF models from the command line.
//!
//! One file per subcommand; `session_args` holds the flags `run` and `chat` share.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod chat;
#[cfg(feature = "eval")]
mod eval;
#[cfg(feature = "eval")]
mod eval_cascade;
mod gpu_info;
mod info;
#[cfg(feature = "net")]
mod list;
mod perplexity;
mod plan;
#[cfg(feature = "net")]
mod pull;
mod quantize;
mod run;
mod session_args;

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "On-device LLM inference: run quantized GGUF models locally"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a continuation of a prompt.
    Run(run::RunArgs),
    /// Interactive chat that keeps its context across turns.
    Chat(chat::ChatArgs),
    /// Show a model file's metadata, tensors and memory needs.
    Info(info::InfoArgs),
    /// Measure prompt and generation speed, time to first token, load time and peak RSS.
    Bench(bench::BenchArgs),
    /// Convert an HF checkpoint directory or a GGUF file into one quantized .safetensors file.
    Quantize(quantize::QuantizeArgs),
    /// Perplexity of a model on a text file (llama-perplexity's definition).
    Perplexity(perplexity::PerplexityArgs),
    /// The GPU adapter the `gpu` device would use, and optionally its memory bandwidth.
    GpuInfo(gpu_info::GpuInfoArgs),
    /// Run models over a task file: accuracy, latency, memory, and which model is enough.
    #[cfg(feature = "eval")]
    Eval(eval::EvalArgs),
    /// Predict resident memory, speed and whether a model fits on a device, without running there.
    Plan(plan::PlanArgs),
    /// Download a model by name (`ember list` shows them) into the models cache.
    #[cfg(feature = "net")]
    Pull(pull::PullArgs),
    /// The models `ember pull` knows, which are downloaded, and other model files in the cache.
    #[cfg(feature = "net")]
    List(list::ListArgs),
}

/// Rust ignores SIGPIPE, so once the reader of a pipe is gone (`ember info m.gguf | head`) every
/// `println!` would panic; Unix tools end quietly instead, as the default action does.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: called first thing in `main`, before any thread exists; SIG_DFL is a valid action
    // for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::command(a),
        Command::Chat(a) => chat::command(a),
        Command::Info(a) => info::command(a),
        Command::Bench(a) => bench::command(a),
        Command::Quantize(a) => quantize::command(a),
        Command::Perplexity(a) => perplexity::command(a),
        Command::GpuInfo(a) => gpu_info::command(a),
        #[cfg(feature = "eval")]
        Command::Eval(a) => match eval::command(a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Plan(a) => plan::command(a),
        #[cfg(feature = "net")]
        Command::Pull(a) => pull::command(a),
        #[cfg(feature = "net")]
        Command::List(a) => list::command(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;
