//! `ember quantize`: any model ember loads (HF checkpoint directory, GGUF file, ember
//! safetensors) to ONE `.safetensors` file in ember's quantized layout (`quant/FORMAT.md`):
//! matrices as ggml blocks in U8 tensors, vectors as F32, and `config.json`, `tokenizer.json`,
//! `tokenizer_config.json` in `__metadata__`. ember maps the result zero-copy.
//!
//! Tensors are written with HF names in HF row order: q/k rows of GGUF Llama files (permuted for
//! adjacent-pair RoPE) are put back, so the file runs with NeoX RoPE like any HF checkpoint.
//!
//! Type policy (llama-quantize's, minus what ember cannot write yet): every matrix gets the
//! requested type, except the output head (the embedding table when tied), which gets Q8_0 when
//! the requested type is below 8 bits (llama.cpp uses Q6_K when the rows are a multiple of 256,
//! Q8_0 otherwise), and matrices whose rows are not whole blocks, which stay F16.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ember_quant::gguf::Gguf;
use ember_quant::safetensors::{header, TensorSpec, TYPE_KEY_PREFIX};
use ember_quant::GgmlType;

use crate::arch::ops::RopeStyle;
use crate::arch::QTensor;
use crate::arch::{Matrix, Variant};
use crate::hf::{self, keys, weights};
use crate::tokenizer::VocabData;
use crate::{Error, LoadParams, Model, Result};

/// Types `ember quantize` writes.
pub const TYPES: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F32,
];

/// One tensor of the output.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TensorReport {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// Row-major shape (`[rows, cols]`).
    pub shape: Vec<u64>,
    pub bytes: usize,
}

/// What `quantize` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QuantizeReport {
    pub input: PathBuf,
    pub output: PathBuf,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub n_params: u64,
    pub seconds: f64,
    pub tensors: Vec<TensorReport>,
}

/// Parse a type name as `--type` takes it (`q4_0`, `Q8_0`, `f16`, ...).
pub fn parse_type(name: &str) -> Result<GgmlType> {
    TYPES
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = TYPES.iter().map(|t| t.name()).collect();
            Error::InvalidArgument(format!(
                "cannot quantize to `{name}` (supported: {})",
                names.join(", ")
            ))
        })
}

/// A tensor to write: where it comes from and what it becomes.
struct Job<'m> {
    src: &'m QTensor,
    name: String,
    ty: GgmlType,
    /// Rows to reorder (GGUF q/k rows back to HF order): heads of this many rows.
    unpermute_heads: Option<usize>,
}

/// Quantize `input` into `output` as `ty`. `progress(done, total)` is called after each tensor.
pub fn quantize(
    input: &Path,
    output: &Path,
    ty: GgmlType,
    mut progress: impl FnMut(usize, usize),
) -> Result<QuantizeReport> {
    if !TYPES.contains(&ty) {
        return Err(Error::InvalidArgument(format!("cannot quantize to {ty}")));
    }
    let start = Instant::now();
    let model = Model::load(input, &LoadParams::default())?;
    let arch = model.arch();
    let c = &arch.config;
    let tied = arch.output.name == arch.token_embd.name && arch.output.file == arch.token_embd.file;
    if matches!(c.variant, Variant::Gemma3 | Variant::Phi3) || c.experts.is_some() {
        return Err(Error::UnsupportedArchitecture(format!(
            "{}: ember's quantized format holds HF-named llama, qwen2 and qwen3 checkpoints",
            c.variant.name()
        )));
    }
    let (docs, pre) = documents(input, &model, tied)?;
    let permuted = c.rope.style == RopeStyle::Normal;
    if permuted && c.variant != Variant::Llama {
        return Err(Error::InvalidArgument(
            "adjacent-pair RoPE is only known for Llama weights".into(),
        ));
    }

    // Output order: vectors first (F32, 4-byte aligned right after the 8-aligned header),
    // then matrices (whose block structs need at most 2-byte alignment; all sizes are even).
    let low_bits = !matches!(
        ty,
        GgmlType::Q8_0 | GgmlType::F16 | GgmlType::BF16 | GgmlType::F32
    );
    let mut vectors: Vec<(&QTensor, String)> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    // Tensors carry GGUF names (GGUF input) or already HF ones (HF input).
    let hf_name = |t: &QTensor| weights::hf_name_of_gguf(&t.name).unwrap_or_else(|| t.name.clone());
    for t in &arch.vecs {
        vectors.push((t, hf_name(t)));
    }
    for (matrix, t) in &arch.mats {
        let heads = match matrix {
            Matrix::Q => Some(c.n_head),
            Matrix::K => Some(c.n_head_kv),
            _ => None,
        };
        jobs.push(Job {
            src: t,
            name: hf_name(t),
            ty,
            unpermute_heads: heads.filter(|_| permuted),
        });
    }
    vectors.push((&arch.output_norm, weights::OUTPUT_NORM.into()));
    if let Some(r) = &arch.rope_freqs {
        // Llama 3 factors computed from config.json are recomputed at load; GGUF ones are kept.
        if !model.is_converted(r) {
            vectors.push((r, weights::ROPE_FREQS.into()));
        }
    }
    let head_ty = if low_bits { GgmlType::Q8_0 } else { ty };
    jobs.push(Job {
        src: &arch.token_embd,
        name: weights::EMBED.into(),
        ty: if tied { head_ty } else { ty },
        unpermute_heads: None,
    });
    if !tied {
        jobs.push(Job {
            src: &arch.output,
            name: weights::OUTPUT.into(),
            ty: head_ty,
            unpermute_heads: None,
        });
    }
    for j in &mut jobs {
        if j.ty.row_bytes(j.src.row_len() as u64).is_none() {
            j.ty = GgmlType::F16;
        }
    }

    // Header.
    let mut specs = Vec::new();
    let mut report = Vec::new();
    let mut meta: HashMap<String, String> = HashMap::new();
    for (t, name) in &vectors {
        let len = t.dims.iter().product::<u64>();
        specs.push(spec(name, GgmlType::F32, len, 1, true)?);
    }
    for j in &jobs {
        specs.push(spec(
            &j.name,
            j.ty,
            j.src.row_len() as u64,
            j.src.n_rows() as u64,
            false,
        )?);
        if !matches!(j.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            meta.insert(format!("{TYPE_KEY_PREFIX}{}", j.name), j.ty.name().into());
        }
    }
    for s in &specs {
        report.push(TensorReport {
            name: s.name.clone(),
            ty: meta
                .get(&format!("{TYPE_KEY_PREFIX}{}", s.name))
                .map(|n| {
                    GgmlType::ALL
                        .into_iter()
                        .find(|t| t.name() == n)
                        .map_or("?", |t| t.name())
                })
                .unwrap_or(match s.dtype {
                    ember_quant::safetensors::Dtype::F16 => "f16",
                    ember_quant::safetensors::Dtype::BF16 => "bf16",
                    _ => "f32",
                }),
            shape: s.shape.clone(),
            bytes: s.len,
        });
    }
    meta.insert(keys::FORMAT.into(), keys::FORMAT_VALUE.into());
    meta.insert(keys::VERSION.into(), "1".into());
    meta.insert(keys::CONFIG.into(), docs.config);
    meta.insert(keys::TOKENIZER.into(), docs.tokenizer);
    if let Some(tc) = docs.tokenizer_config {
        meta.insert(keys::TOKENIZER_CONFIG.into(), tc);
    }
    if let Some(pre) = pre {
        meta.insert(keys::PRE_TOKENIZER.into(), pre);
    }
    if let Some(name) = model.name() {
        meta.insert(keys::NAME.into(), name.into());
    }
    meta.insert("ember.quantized_type".into(), ty.name().into());
    let head = header(&specs, meta).map_err(|source| Error::Safetensors {
        path: output.to_path_buf(),
        source,
    })?;

    // Data, into a temporary file renamed at the end (no half-written OUT on failure).
    let tmp = output.with_extension("safetensors.part");
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    w.write_all(&head).map_err(io_err(&tmp))?;
    let data = model.weight_data();
    let total = vectors.len() + jobs.len();
    let mut done = 0;
    for (t, _) in &vectors {
        let values = ember_quant::dequant::dequantize_to_vec(t.ty, t.bytes(data))
            .map_err(|e| Error::Kernel(format!("{}: {e}", t.name)))?;
        for v in values {
            w.write_all(&v.to_le_bytes()).map_err(io_err(&tmp))?;
        }
        done += 1;
        progress(done, total);
    }
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = Vec::new();
    for j in &jobs {
        let rows = j.src.n_rows();
        let dst_row_bytes = j.ty.row_bytes(j.src.row_len() as u64).unwrap_or(0) as usize;
        // Groups of rows bound the buffer; each group is split over the threads.
        let group = (ROWS_PER_GROUP / n_threads).max(1) * n_threads;
        for first in (0..rows).step_by(group) {
            let n = group.min(rows - first);
            out.resize(n * dst_row_bytes, 0u8);
            let per_thread = n.div_ceil(n_threads);
            let model = &model;
            std::thread::scope(|scope| {
                let handles: Vec<_> = out
                    .chunks_mut(per_thread * dst_row_bytes)
                    .enumerate()
                    .map(|(t, chunk)| {
                        let from = first + t * per_thread;
                        scope.spawn(move || convert_rows(j, model, from, chunk, dst_row_bytes))
                    })
                    .collect();
                handles.into_iter().try_for_each(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Kernel("quantize thread panicked".into())))
                })
            })?;
            w.write_all(&out).map_err(io_err(&tmp))?;
        }
        done += 1;
        progress(done, total);
    }
    w.flush().map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, output).map_err(io_err(output))?;
    let output_bytes = std::fs::metadata(output).map_err(io_err(output))?.len();
    Ok(QuantizeReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        ty: ty.name(),
        input_bytes: model.file_size(),
        output_bytes,
        n_params: model.n_params(),
        seconds: start.elapsed().as_secs_f64(),
        tensors: report,
    })
}

/// Rows converted per batch (bounds memory to this many output rows).
const ROWS_PER_GROUP: usize = 4096;

/// Convert the rows of `j` starting at `first` into `out` (whole rows of `dst_row_bytes`).
fn convert_rows(
    j: &Job,
    model: &Model,
    first: usize,
    out: &mut [u8],
    dst_row_bytes: usize,
) -> Result<()> {
    let (k, rows) = (j.src.row_len(), j.src.n_rows());
    let src = j.src.bytes(model.weight_data());
    let src_row_bytes = j.src.row_bytes();
    let mut row = vec![0.0f32; k];
    for (i, dst) in out.chunks_exact_mut(dst_row_bytes).enumerate() {
        let r = first + i;
        let from = match j.unpermute_heads {
            Some(heads) => gguf_row_of_hf_row(r, rows / heads),
            None => r,
        };
        ember_quant::dequant::dequantize(
            j.src.ty,
            &src[from * src_row_bytes..(from + 1) * src_row_bytes],
            &mut row,
        )
        .map_err(|e| Error::Kernel(format!("{}: {e}", j.src.name)))?;
        encode(j.ty, &row, dst).map_err(|e| Error::Kernel(format!("{}: {e}", j.name)))?;
    }
    Ok(())
}

fn spec(name: &str, ty: GgmlType, cols: u64, rows: u64, vector: bool) -> Result<TensorSpec> {
    let mut s = TensorSpec::ggml(name, ty, cols, rows).ok_or_else(|| Error::TensorShape {
        name: name.into(),
        expected: vec![],
        found: vec![cols, rows],
    })?;
    if vector {
        s.shape = vec![cols];
    }
    Ok(s)
}

/// Row `r` of an HF q/k matrix is this row of the GGUF one (heads of `head_rows` rows; GGUF
/// interleaves each head's two halves for adjacent-pair RoPE: `convert_hf_to_gguf.py permute`).
fn gguf_row_of_hf_row(r: usize, head_rows: usize) -> usize {
    let half = head_rows / 2;
    let (head, i) = (r / head_rows, r % head_rows);
    let (s, j) = (i / half, i % half);
    head * head_rows + 2 * j + s
}

/// One row of f32 values as `ty`.
fn encode(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), String> {
    match ty {
        GgmlType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
            Ok(())
        }
        GgmlType::F16 => {
            for (o, v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&half::f16::from_f32(*v).to_bits().to_le_bytes());
            }
            Ok(())
        }
        GgmlType::BF16 => {
            for (o, v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&half::bf16::from_f32(*v).to_bits().to_le_bytes());
            }
            Ok(())
        }
        _ => ember_quant::quantize::quantize(ty, x, out).map_err(|e| e.to_string()),
    }
}

/// config.json, tokenizer.json and tokenizer_config.json for the output, and the pre-tokenizer
/// name: copied from an HF directory or ember file, written from a GGUF's metadata.
fn documents(input: &Path, model: &Model, tied: bool) -> Result<(hf::Documents, Option<String>)> {
    if input.is_dir() {
        let docs = hf::read_documents(input)?;
        let pre = pre_of(&docs, model)?;
        return Ok((docs, pre));
    }
    let bytes = model.data();
    if bytes.starts_with(b"GGUF") {
        let g = Gguf::parse(bytes).map_err(|source| Error::Gguf {
            path: input.to_path_buf(),
            source,
        })?;
        let vocab = VocabData::from_gguf(&g)?;
        let (tokenizer, tokenizer_config) = hf::tokenizer::to_json(&vocab, model.chat_template())?;
        // Weights are written in HF order, so the config says NeoX like any HF checkpoint.
        let config = hf::config::to_json(&model.arch().config, tied)?;
        return Ok((
            hf::Documents {
                config,
                tokenizer,
                tokenizer_config: Some(tokenizer_config),
            },
            vocab.pre,
        ));
    }
    let st = ember_quant::safetensors::Safetensors::parse(bytes).map_err(|source| {
        Error::Safetensors {
            path: input.to_path_buf(),
            source,
        }
    })?;
    let docs = match st.meta(keys::CONFIG) {
        Some(config) => hf::Documents {
            config: config.into(),
            tokenizer: st.meta(keys::TOKENIZER).unwrap_or_default().into(),
            tokenizer_config: st.meta(keys::TOKENIZER_CONFIG).map(str::to_owned),
        },
        None => hf::read_documents(input.parent().unwrap_or(Path::new(".")))?,
    };
    let pre = match st.meta(keys::PRE_TOKENIZER) {
        Some(p) => Some(p.to_owned()),
        None => pre_of(&docs, model)?,
    };
    Ok((docs, pre))
}

/// The pre-tokenizer name recognised from an HF tokenizer.json.
fn pre_of(docs: &hf::Documents, model: &Model) -> Result<Option<String>> {
    let t = hf::tokenizer::parse(
        &docs.tokenizer,
        docs.tokenizer_config.as_deref(),
        model.arch().config.n_vocab,
        None,
    )?;
    Ok(t.vocab.pre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_convert_hf_to_gguf_permute() {
        // permute(): HF row h*hd + s*hd/2 + j  goes to GGUF row h*hd + 2j + s.
        let hd = 8;
        let mut seen = vec![false; 2 * hd];
        for r in 0..2 * hd {
            let g = gguf_row_of_hf_row(r, hd);
            let (h, i) = (r / hd, r % hd);
            assert_eq!(g, h * hd + 2 * (i % (hd / 2)) + i / (hd / 2));
            seen[g] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
