//! `ember`: run, chat with and inspect GGUF models from the command line.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

#[cfg(feature = "eval")]
mod eval;
use ember::chat::{ChatMessage, ChatTemplate};
use ember::{GenerateParams, LoadParams, Model, Sampler, SamplerParams, Session, SessionParams};

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
    Run(RunArgs),
    /// Interactive chat that keeps its context across turns.
    Chat(ChatArgs),
    /// Show a model file's metadata, tensors and memory needs.
    Info(InfoArgs),
    /// Measure prompt and generation speed, time to first token, load time and peak RSS.
    Bench(BenchArgs),
    /// Convert an HF checkpoint directory or a GGUF file into one quantized .safetensors file.
    Quantize(QuantizeArgs),
    /// Perplexity of a model on a text file (llama-perplexity's definition).
    Perplexity(PerplexityArgs),
    /// The GPU adapter the `gpu` device would use, and optionally its memory bandwidth.
    GpuInfo(GpuInfoArgs),
    /// Run models over a task file: accuracy, latency, memory, and which model is enough.
    #[cfg(feature = "eval")]
    Eval(eval::EvalArgs),
}

#[derive(Args)]
struct QuantizeArgs {
    /// Input: HF checkpoint directory, GGUF file or ember .safetensors file.
    input: PathBuf,
    /// Output .safetensors file.
    output: PathBuf,
    /// Weight type: q4_0, q4_1, q5_0, q5_1, q8_0, f16, bf16, f32.
    #[arg(long = "type", default_value = "q8_0")]
    ty: String,
    /// Print a JSON summary (sizes, time, per-tensor types).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PerplexityArgs {
    /// Model (GGUF file, HF checkpoint directory or ember .safetensors file).
    #[arg(short = 'm', long = "model")]
    model: PathBuf,
    /// Text file.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Worker threads (0: one per core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    /// Evaluate at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Engine: cpu (ember's kernels), gpu (burn on wgpu), auto (a hardware GPU if there is
    /// one, else cpu) or burn-cpu (the GPU graph on burn-ndarray, a reference).
    #[arg(long, default_value = "cpu")]
    device: ember::DeviceChoice,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct GpuInfoArgs {
    /// Also measure the adapter's memory read bandwidth (a CubeCL probe; takes seconds).
    #[arg(long)]
    bandwidth: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Model files (repeatable).
    #[arg(short = 'm', long = "model", required = true)]
    models: Vec<PathBuf>,
    /// Prompt length of the prompt-processing test (0 skips it).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Tokens of the generation test (0 skips it).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Thread counts, comma separated.
    #[arg(
        short = 't',
        long = "threads",
        value_delimiter = ',',
        default_value = "2"
    )]
    threads: Vec<usize>,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    repetitions: usize,
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    batch: usize,
    /// Prompt length of the time-to-first-token test (0 skips it).
    #[arg(long = "ttft-prompt", default_value_t = 128)]
    ttft_prompt: usize,
    /// Read the file into (anonymous, huge-page eligible) memory instead of mapping it; costs
    /// the file size in RSS (llama-bench's `-mmp 0`).
    #[arg(long)]
    no_mmap: bool,
    /// Engine: cpu (ember's kernels), gpu (burn on wgpu), auto (a hardware GPU if there is
    /// one, else cpu) or burn-cpu (the GPU graph on burn-ndarray, a reference).
    #[arg(long, default_value = "cpu")]
    device: ember::DeviceChoice,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ModelArgs {
    /// Model file (GGUF).
    #[arg(short = 'm', long = "model")]
    model: PathBuf,
    /// Worker threads (0: one per core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    /// Context length (0: the model's training context).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    ctx: usize,
    /// Prompt tokens per forward pass.
    #[arg(short = 'b', long = "batch-size", default_value_t = 256)]
    batch: usize,
    /// Read the file into memory instead of mapping it.
    #[arg(long)]
    no_mmap: bool,
    /// Engine: cpu (ember's kernels), gpu (burn on wgpu), auto (a hardware GPU if there is
    /// one, else cpu) or burn-cpu (the GPU graph on burn-ndarray, a reference).
    #[arg(long, default_value = "cpu")]
    device: ember::DeviceChoice,
}

#[derive(Args)]
struct SamplingArgs {
    /// Temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8)]
    temperature: f32,
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    #[arg(long, default_value_t = 0.0)]
    frequency_penalty: f32,
    #[arg(long, default_value_t = 0.0)]
    presence_penalty: f32,
    /// RNG seed (default: random).
    #[arg(short = 's', long)]
    seed: Option<u64>,
}

impl SamplingArgs {
    fn params(&self) -> SamplerParams {
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

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Prompt text.
    #[arg(short = 'p', long, conflicts_with = "file")]
    prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n_predict: usize,
    /// Stop when this text appears (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Keep generating past end-of-generation tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat_template: bool,
    /// Print one JSON object (ids, text, timings, peak RSS) instead of streaming text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// System prompt.
    #[arg(long = "system")]
    system: Option<String>,
    /// Most tokens per reply.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n_predict: usize,
}

#[derive(Args)]
struct InfoArgs {
    /// Model file (GGUF).
    file: PathBuf,
    /// Context length for the memory estimate (0: the training context).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    ctx: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Chat(a) => chat(a),
        Command::Info(a) => info(a),
        Command::Bench(a) => bench(a),
        Command::Quantize(a) => quantize(a),
        Command::Perplexity(a) => perplexity(a),
        Command::GpuInfo(a) => gpu_info(a),
        #[cfg(feature = "eval")]
        Command::Eval(a) => match eval::command(a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
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

fn load(args: &ModelArgs) -> Result<(Arc<Model>, Session), ember::Error> {
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

fn run(a: RunArgs) -> CliResult {
    let mut prompt = match (&a.prompt, &a.file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?
        }
        (None, None) => return Err("give a prompt with -p TEXT or -f FILE".into()),
    };
    let (model, mut session) = load(&a.model)?;
    if a.chat_template {
        prompt = ChatTemplate::for_model(&model)?.render(&[ChatMessage::new("user", prompt)], true)?;
    }
    let tok = model.tokenizer();
    // A chat-templated prompt already carries its BOS (if the template adds one).
    let ids = tok.encode(&prompt, !a.chat_template, true)?;
    let mut sampler = Sampler::new(a.sampling.params(), tok.n_vocab())?;
    let params = GenerateParams {
        max_tokens: a.n_predict,
        stop: a.stop.clone(),
        ignore_eos: a.ignore_eos,
        abort: None,
        logprobs: false,
    };
    let stdout = std::io::stdout();
    if !a.json {
        print!("{prompt}");
    }
    let gen = session.generate(&ids, &mut sampler, &params, |text| {
        if !a.json {
            let mut out = stdout.lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        true
    })?;
    if a.json {
        let report = serde_json::json!({
            "model": model.path(),
            "prompt_ids": ids,
            "generated_ids": gen.tokens,
            "text": gen.text,
            "stop_reason": format!("{:?}", gen.stop_reason),
            "n_threads": session.n_threads(),
            "n_ctx": session.n_ctx(),
            "load_ms": model.load_time().as_secs_f64() * 1e3,
            "prompt_tokens": gen.n_prompt_eval,
            "prompt_ms": gen.prompt_time.as_secs_f64() * 1e3,
            "prompt_tokens_per_s": gen.prompt_tokens_per_second(),
            "generated_tokens": gen.tokens.len(),
            "generate_ms": gen.generate_time.as_secs_f64() * 1e3,
            "generate_tokens_per_s": gen.generate_tokens_per_second(),
            "peak_rss_bytes": ember::rss::peak_rss_bytes(),
        });
        println!("{report}");
    } else {
        println!();
        eprintln!(
            "\n[ember] load {:.0} ms | prompt {} tokens, {:.1} tok/s | generated {} tokens, {:.1} tok/s | stop: {:?}",
            model.load_time().as_secs_f64() * 1e3,
            gen.n_prompt_eval,
            gen.prompt_tokens_per_second(),
            gen.tokens.len(),
            gen.generate_tokens_per_second(),
            gen.stop_reason
        );
    }
    Ok(())
}

fn chat(a: ChatArgs) -> CliResult {
    let (model, mut session) = load(&a.model)?;
    let tmpl = ChatTemplate::for_model(&model)?;
    let tok = model.tokenizer();
    let mut sampler = Sampler::new(a.sampling.params(), tok.n_vocab())?;
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(ChatMessage::new("system", s.clone()));
    }
    let params = GenerateParams {
        max_tokens: a.n_predict,
        ..Default::default()
    };
    let stdin = std::io::stdin();
    eprintln!(
        "[ember] chatting with {} — empty line or Ctrl-D to quit",
        model.name().unwrap_or("the model")
    );
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        messages.push(ChatMessage::new("user", line.trim_end().to_owned()));
        // Render the whole conversation, keep the cached tokens it starts with, and evaluate only
        // the rest: the KV cache carries over from turn to turn.
        let ids = tok.encode(&tmpl.render(&messages, true)?, false, true)?;
        let common = session
            .tokens()
            .iter()
            .zip(&ids)
            .take_while(|(a, b)| a == b)
            .count();
        let keep = common.min(ids.len().saturating_sub(1));
        session.truncate(keep);
        let mut out = std::io::stdout();
        let gen = session.generate(&ids[keep..], &mut sampler, &params, |text| {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            true
        })?;
        println!();
        if gen.stop_reason == ember::StopReason::ContextFull {
            eprintln!(
                "[ember] context full ({} tokens): start a new chat",
                session.n_ctx()
            );
            break;
        }
        messages.push(ChatMessage::new("assistant", gen.text));
    }
    Ok(())
}

fn info(a: InfoArgs) -> CliResult {
    let bytes = std::fs::File::open(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
    // SAFETY: read-only map of a model file that is not modified while we read it (as in Model::load).
    let map = unsafe { memmap2::Mmap::map(&bytes) }?;
    let gguf = ember_quant::gguf::Gguf::parse(&map)?;
    let model = Model::load(&a.file, &LoadParams::default())?;
    let ctx = if a.ctx == 0 {
        model.n_ctx_train()
    } else {
        a.ctx
    };
    let kv_bytes = model.arch().kv_bytes_per_token() as u64 * ctx as u64;
    let summary = |v: &ember_quant::gguf::Value| -> String {
        use ember_quant::gguf::Value;
        match v {
            Value::Array(items) => format!("[{} items]", items.len()),
            Value::String(s) if s.len() > 80 => {
                format!("{:?}… ({} bytes)", &s[..s.floor_char_boundary(60)], s.len())
            }
            other => format!("{other:?}"),
        }
    };
    if a.json {
        let tensors: Vec<_> = gguf
            .tensors
            .iter()
            .map(|t| serde_json::json!({"name": t.name, "type": t.ty.name(), "dims": t.dims, "bytes": t.size}))
            .collect();
        let meta: serde_json::Map<String, serde_json::Value> = gguf
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(summary(v))))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "file": a.file, "gguf_version": gguf.version, "file_bytes": model.file_size(),
                "architecture": model.arch().config.variant.name(), "n_params": model.n_params(),
                "n_ctx": ctx, "kv_cache_bytes": kv_bytes, "estimated_bytes": model.file_size() + kv_bytes,
                "metadata": meta, "tensors": tensors,
            })
        );
        return Ok(());
    }
    println!(
        "file: {} (GGUF v{}, {:.1} MiB)",
        a.file.display(),
        gguf.version,
        model.file_size() as f64 / 1048576.0
    );
    println!("metadata:");
    for (k, v) in &gguf.metadata {
        println!("  {k:<45} {}", summary(v));
    }
    println!("tensors:");
    println!(
        "  {:<32} {:<6} {:>20} {:>12}",
        "name", "type", "dims", "bytes"
    );
    for t in &gguf.tensors {
        println!(
            "  {:<32} {:<6} {:>20} {:>12}",
            t.name,
            t.ty.name(),
            format!("{:?}", t.dims),
            t.size
        );
    }
    let c = &model.arch().config;
    println!(
        "architecture {} | {} layers, {} embd, {} heads ({} KV), ff {} | vocab {}",
        c.variant.name(),
        c.n_layer,
        c.n_embd,
        c.n_head,
        c.n_head_kv,
        c.n_ff,
        c.n_vocab
    );
    println!(
        "parameters: {} ({:.1} M)",
        model.n_params(),
        model.n_params() as f64 / 1e6
    );
    println!(
        "memory at context {ctx}: weights {:.1} MiB (mapped) + KV cache {:.1} MiB (f16) = {:.1} MiB plus compute buffers",
        model.file_size() as f64 / 1048576.0,
        kv_bytes as f64 / 1048576.0,
        (model.file_size() + kv_bytes) as f64 / 1048576.0
    );
    Ok(())
}

fn bench(a: BenchArgs) -> CliResult {
    let params = ember::bench::BenchParams {
        n_prompt: a.n_prompt,
        n_gen: a.n_gen,
        threads: a.threads.clone(),
        repetitions: a.repetitions.max(1),
        n_batch: a.batch,
        ttft_prompt: a.ttft_prompt,
        use_mmap: !a.no_mmap,
        device: a.device,
    };
    let mut all = Vec::new();
    let mut stats = Vec::new();
    if !a.json {
        println!(
            "| {:<36} | {:>9} | {:>8} | {:>7} | {:>8} | {:>20} |",
            "model", "size MiB", "params M", "threads", "test", "t/s (ttft: ms)"
        );
        println!(
            "|{:-<38}|{:-<11}|{:-<10}|{:-<9}|{:-<10}|{:-<22}|",
            "", "", "", "", "", ""
        );
    }
    for path in &a.models {
        let (s, results) = ember::bench::bench_model(path, &params)?;
        if !a.json {
            for r in &results {
                println!(
                    "| {:<36} | {:>9.1} | {:>8.1} | {:>7} | {:>8} | {:>11.2} ± {:>6.2} |",
                    r.model,
                    r.file_bytes as f64 / 1048576.0,
                    r.n_params as f64 / 1e6,
                    r.threads,
                    r.test,
                    r.mean,
                    r.stddev
                );
            }
            let rss = s
                .peak_rss_bytes
                .map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
            let device = results.first().map_or("", |r| r.device.as_str());
            println!(
                "|   {} on {device}: load {:.1} ms, peak RSS of this process so far {rss}",
                s.model, s.load_ms
            );
        }
        all.extend(results);
        stats.push(s);
    }
    if a.json {
        println!("{}", serde_json::json!({ "results": all, "models": stats }));
    }
    Ok(())
}

fn quantize(a: QuantizeArgs) -> CliResult {
    let ty = ember::quantize::parse_type(&a.ty)?;
    let mut last = std::time::Instant::now();
    let report = ember::quantize::quantize(&a.input, &a.output, ty, |done, total| {
        // A one-line progress bar on stderr, redrawn at most ten times a second.
        if done == total || last.elapsed().as_millis() >= 100 {
            last = std::time::Instant::now();
            let width = 40;
            let filled = width * done / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} tensors",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
        }
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} -> {} ({}): {:.1} MiB -> {:.1} MiB, {} tensors, {:.1} s",
            report.input.display(),
            report.output.display(),
            report.ty,
            report.input_bytes as f64 / 1048576.0,
            report.output_bytes as f64 / 1048576.0,
            report.tensors.len(),
            report.seconds
        );
    }
    Ok(())
}

fn perplexity(a: PerplexityArgs) -> CliResult {
    let text =
        std::fs::read_to_string(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let model = Arc::new(Model::load(&a.model, &LoadParams::default())?);
    let params = ember::perplexity::PerplexityParams {
        n_ctx: a.ctx,
        n_threads: a.threads,
        max_chunks: a.chunks,
        device: a.device,
    };
    let report = ember::perplexity::perplexity(model, &text, &params, |i, n, ppl| {
        if !a.json {
            eprint!("[{}/{n}] {ppl:.4} ", i + 1);
            if i + 1 == n {
                eprintln!();
            }
        }
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Final estimate: PPL = {:.4} +/- {:.5} ({} chunks of {} tokens, {:.1} s)",
            report.ppl, report.ppl_err, report.n_chunks, report.n_ctx, report.seconds
        );
    }
    Ok(())
}

#[cfg(feature = "gpu")]
fn gpu_info(a: GpuInfoArgs) -> CliResult {
    let (device, info) = ember::gpu::open_gpu()?;
    let bandwidth = a.bandwidth.then(|| ember::gpu::read_bandwidth(&device));
    if a.json {
        let mut out = serde_json::json!({
            "adapter": info.describe(),
            "name": info.name,
            "kind": info.kind,
            "api": info.api,
            "hardware": info.is_hardware(),
            "cache_dir": ember::gpu::cache::dir(),
        });
        match bandwidth {
            Some(Ok(b)) => out["read_bytes_per_s"] = b.into(),
            Some(Err(e)) => out["bandwidth_error"] = e.into(),
            None => {}
        }
        println!("{out}");
    } else {
        println!("adapter: {}", info.describe());
        if let Some(dir) = ember::gpu::cache::dir() {
            println!(
                "kernel and autotune cache: {}",
                dir.join("cubecl").display()
            );
        }
        match bandwidth {
            Some(Ok(b)) => println!("memory read bandwidth: {:.1} GB/s", b / 1e9),
            Some(Err(e)) => println!("memory read bandwidth: not measured ({e})"),
            None => {}
        }
    }
    Ok(())
}

#[cfg(not(feature = "gpu"))]
fn gpu_info(_: GpuInfoArgs) -> CliResult {
    Err(ember::Error::NoDevice("ember was built without the `gpu` feature".into()).into())
}
