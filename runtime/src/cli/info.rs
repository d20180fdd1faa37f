//! `ember info`: a model file's metadata, tensors and memory needs.

use std::path::PathBuf;

use clap::Args;
use ember::{LoadParams, Model};

use crate::CliResult;

#[derive(Args)]
pub struct InfoArgs {
    /// Model file (GGUF), or a registry name.
    #[arg(value_parser = crate::session_args::model_arg)]
    file: PathBuf,
    /// Context length for the memory estimate (0: the training context).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    ctx: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn command(a: InfoArgs) -> CliResult {
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
    if let Some(x) = &c.experts {
        println!(
            "experts: {} of width {} per layer, {} used per token",
            x.n_expert, x.n_ff, x.n_used
        );
    }
    println!(
        "parameters: {} ({:.1} M)",
        model.n_params(),
        model.n_params() as f64 / 1e6
    );
    // What bounds decode speed: the bytes of weights one token reads (a MoE token, its
    // experts only).
    let shape = ember::plan::Shape::of(&model);
    let total: u64 = shape.tensors.iter().map(|t| t.bytes).sum();
    println!(
        "weights read per decoded token: {:.1} MiB of {:.1} MiB",
        shape.bytes_per_token() as f64 / 1048576.0,
        total as f64 / 1048576.0
    );
    println!(
        "memory at context {ctx}: weights {:.1} MiB (mapped) + KV cache {:.1} MiB (f16) = {:.1} MiB plus compute buffers",
        model.file_size() as f64 / 1048576.0,
        kv_bytes as f64 / 1048576.0,
        (model.file_size() + kv_bytes) as f64 / 1048576.0
    );
    Ok(())
}
