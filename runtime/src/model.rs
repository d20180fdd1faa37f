//! A loaded model: the memory-mapped file(s), its architecture definition and its tokenizer.
//!
//! Three sources, told apart by what the path is: a GGUF file (magic `GGUF`), a Hugging Face
//! checkpoint directory (one map per safetensors shard), or a `.safetensors` file (ember's
//! quantized format, which carries its config and tokenizer in `__metadata__`; or one HF weight
//! file, whose JSON documents are then read from its directory).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ember_quant::gguf::Gguf;
use ember_quant::safetensors::Safetensors;

use crate::arch::{Definition, WeightData};
use crate::hf;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadParams {
    /// Map the file (default). Off: read it into memory, for filesystems that cannot map.
    pub use_mmap: bool,
}

impl Default for LoadParams {
    fn default() -> Self {
        LoadParams { use_mmap: true }
    }
}

/// A model file's bytes: a read-only memory map, or an owned, 8-byte aligned copy; or the few
/// vectors converted to f32 at load time (HF norm weights stored in f16/bf16).
enum Storage {
    Mapped(memmap2::Mmap),
    Owned { words: Vec<u64>, len: usize },
    Floats(Vec<f32>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(map) => map,
            Storage::Owned { words, len } => {
                // SAFETY: a `Vec<u64>` is a valid, initialized allocation of `words.len() * 8`
                // bytes; `len` is at most that (set in `read_aligned`), and u8 has no alignment
                // or validity requirements.
                unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, *len) }
            }
            Storage::Floats(v) => {
                // SAFETY: a `Vec<f32>` is a valid, initialized allocation of `v.len() * 4`
                // bytes, and u8 has no alignment or validity requirements.
                unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) }
            }
        }
    }
}

/// A model ready to run: immutable, shareable between sessions and threads (`Arc<Model>`).
pub struct Model {
    path: PathBuf,
    /// The weight files (one for GGUF, one per shard for HF checkpoints), then any converted
    /// vectors; `QTensor::file` indexes this.
    files: Vec<Storage>,
    arch: Definition,
    tokenizer: Tokenizer,
    chat_template: Option<String>,
    name: Option<String>,
    load_time: Duration,
    /// Weights uploaded to GPU (or burn-ndarray) devices, once per device, on first use.
    #[cfg(feature = "gpu")]
    device_weights: std::sync::Mutex<Vec<std::sync::Arc<crate::gpu::graph::DeviceWeights>>>,
}

impl Model {
    /// Map (or read) a GGUF file and build the model from its metadata. No weight is copied or
    /// touched: the kernels read them straight from the map.
    pub fn load(path: impl AsRef<Path>, params: &LoadParams) -> Result<Model> {
        Model::load_with_progress(path, params, |_| true)
    }

    /// Like [`Model::load`], reporting progress in `0.0..=1.0`; returning `false` from `progress`
    /// abandons the load with [`Error::Aborted`].
    pub fn load_with_progress(
        path: impl AsRef<Path>,
        params: &LoadParams,
        mut progress: impl FnMut(f32) -> bool,
    ) -> Result<Model> {
        let mut report = |p: f32| {
            if progress(p) {
                Ok(())
            } else {
                Err(Error::Aborted)
            }
        };
        report(0.0)?;
        let start = Instant::now();
        let path = path.as_ref().to_path_buf();
        let loaded = if path.is_dir() {
            load_hf_dir(&path, params, &mut report)?
        } else {
            let storage = open(&path, params, &mut report)?;
            // safetensors has no magic number: a file that is not GGUF is read as safetensors
            // when it says so by name (anything else gets the GGUF parser's error).
            let safetensors = !storage.bytes().starts_with(b"GGUF")
                && path.extension().is_some_and(|e| e == "safetensors");
            if safetensors {
                load_safetensors_file(&path, storage, params, &mut report)?
            } else {
                load_gguf(&path, storage)?
            }
        };
        if loaded.tokenizer.n_vocab() != loaded.arch.config.n_vocab {
            return Err(Error::BadMetadata {
                key: "tokenizer".into(),
                reason: format!(
                    "{} tokens, but the output layer has {} rows",
                    loaded.tokenizer.n_vocab(),
                    loaded.arch.config.n_vocab
                ),
            });
        }
        report(1.0)?;
        Ok(Model {
            path,
            files: loaded.files,
            arch: loaded.arch,
            tokenizer: loaded.tokenizer,
            chat_template: loaded.chat_template,
            name: loaded.name,
            load_time: start.elapsed(),
            #[cfg(feature = "gpu")]
            device_weights: Default::default(),
        })
    }

    /// The weights on `device`, uploading them the first time a session asks.
    #[cfg(feature = "gpu")]
    pub(crate) fn device_weights(
        &self,
        device: &burn::tensor::Device,
        kernel: ember_kernels::gpu::MatmulKernel,
    ) -> Result<std::sync::Arc<crate::gpu::graph::DeviceWeights>> {
        let mut uploaded = self
            .device_weights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(w) = uploaded.iter().find(|w| &w.device == device) {
            return Ok(w.clone());
        }
        let w = std::sync::Arc::new(crate::gpu::graph::DeviceWeights::upload(
            &self.arch,
            self.weight_data(),
            device,
            kernel,
        )?);
        uploaded.push(w.clone());
        Ok(w)
    }

    /// The (first) model file's bytes (the memory map).
    pub fn data(&self) -> &[u8] {
        self.files[0].bytes()
    }

    /// Where the weights' bytes are, for the forward pass.
    pub fn weight_data(&self) -> &dyn WeightData {
        self
    }

    pub fn arch(&self) -> &Definition {
        &self.arch
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The Jinja chat template stored in the file, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `general.name`, if the file has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether `t` lives in memory converted at load time rather than in a model file.
    pub fn is_converted(&self, t: &crate::arch::QTensor) -> bool {
        matches!(self.files.get(t.file), Some(Storage::Floats(_)))
    }

    /// Time taken by `load` (map + parse + build).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Size of the model file(s) in bytes (all shards), plus any vectors converted at load.
    pub fn file_size(&self) -> u64 {
        self.files.iter().map(|f| f.bytes().len() as u64).sum()
    }

    /// Number of weights (elements of all tensors).
    pub fn n_params(&self) -> u64 {
        self.arch.n_params
    }

    /// Training context length.
    pub fn n_ctx_train(&self) -> usize {
        self.arch.config.n_ctx_train
    }
}

impl WeightData for Model {
    fn file(&self, index: usize) -> &[u8] {
        // Indices come from the tensors built at load time, all below `files.len()`.
        self.files[index].bytes()
    }
}

/// What each loader produces.
struct Loaded {
    files: Vec<Storage>,
    arch: Definition,
    tokenizer: Tokenizer,
    chat_template: Option<String>,
    name: Option<String>,
}

/// Map (or read) one file.
fn open(
    path: &Path,
    params: &LoadParams,
    report: &mut impl FnMut(f32) -> Result<()>,
) -> Result<Storage> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    if params.use_mmap {
        // SAFETY: the map is read-only. The usual mmap caveat applies: if another process
        // truncates or rewrites the file while it is mapped, reads may fault or see new
        // bytes. Like llama.cpp, we accept that model files are not modified while in use.
        Ok(Storage::Mapped(
            unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?,
        ))
    } else {
        read_aligned(file, path, report)
    }
}

fn load_gguf(path: &Path, storage: Storage) -> Result<Loaded> {
    let gguf = Gguf::parse(storage.bytes()).map_err(|source| Error::Gguf {
        path: path.to_path_buf(),
        source,
    })?;
    let arch = crate::arch::from_gguf(&gguf)?;
    let tokenizer = Tokenizer::from_gguf(&gguf)?;
    let chat_template = gguf.get_str("tokenizer.chat_template").map(str::to_owned);
    let name = gguf.get_str("general.name").map(str::to_owned);
    drop(gguf);
    Ok(Loaded {
        files: vec![storage],
        arch,
        tokenizer,
        chat_template,
        name,
    })
}

fn load_hf_dir(
    dir: &Path,
    params: &LoadParams,
    report: &mut impl FnMut(f32) -> Result<()>,
) -> Result<Loaded> {
    let ckpt = hf::open_dir(dir)?;
    let mut files = Vec::with_capacity(ckpt.shards.len() + 1);
    for (i, shard) in ckpt.shards.iter().enumerate() {
        files.push(open(shard, params, &mut |_| Ok(()))?);
        report(0.9 * (i + 1) as f32 / ckpt.shards.len() as f32)?;
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    from_safetensors(&ckpt.shards, files, &ckpt.docs, None, name)
}

fn load_safetensors_file(
    path: &Path,
    storage: Storage,
    _params: &LoadParams,
    report: &mut impl FnMut(f32) -> Result<()>,
) -> Result<Loaded> {
    report(0.9)?;
    let st = Safetensors::parse(storage.bytes()).map_err(|source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = |k: &str| st.meta(k).map(str::to_owned);
    let (docs, pre, name) = match meta(hf::keys::CONFIG) {
        // ember's quantized format: everything is in the header.
        Some(config) => (
            hf::Documents {
                config,
                tokenizer: meta(hf::keys::TOKENIZER)
                    .ok_or_else(|| Error::MissingMetadata(hf::keys::TOKENIZER.into()))?,
                tokenizer_config: meta(hf::keys::TOKENIZER_CONFIG),
            },
            meta(hf::keys::PRE_TOKENIZER),
            meta(hf::keys::NAME),
        ),
        // One HF weight file: its JSON documents are beside it.
        None => {
            let dir = path.parent().unwrap_or(Path::new("."));
            (hf::read_documents(dir)?, None, None)
        }
    };
    drop(st);
    from_safetensors(&[path.to_path_buf()], vec![storage], &docs, pre, name)
}

/// Build the model over safetensors `files` (already mapped) described by `docs`.
fn from_safetensors(
    paths: &[PathBuf],
    mut files: Vec<Storage>,
    docs: &hf::Documents,
    pre_hint: Option<String>,
    name: Option<String>,
) -> Result<Loaded> {
    let config = hf::config::parse(&docs.config)?;
    let mut table = hf::weights::TensorTable::default();
    for (i, (path, storage)) in paths.iter().zip(&files).enumerate() {
        let st = Safetensors::parse(storage.bytes()).map_err(|source| Error::Safetensors {
            path: path.clone(),
            source,
        })?;
        table.add_shard(i, &st)?;
    }
    let mut conv = hf::weights::Converted {
        file: files.len(),
        data: Vec::new(),
    };
    let arch = {
        let bytes: Vec<&[u8]> = files.iter().map(Storage::bytes).collect();
        hf::weights::build(&config, &table, &bytes, &mut conv)?
    };
    // The extra file is always present (possibly empty) so `conv.file` stays valid.
    files.push(Storage::Floats(conv.data));
    let tok = hf::tokenizer::parse(
        &docs.tokenizer,
        docs.tokenizer_config.as_deref(),
        config.config.n_vocab,
        pre_hint.as_deref(),
    )?;
    let tokenizer = Tokenizer::from_vocab(&tok.vocab)?;
    Ok(Loaded {
        files,
        arch,
        tokenizer,
        chat_template: tok.chat_template,
        name,
    })
}

/// Read the whole file into 8-byte aligned memory (so blocks can be viewed in place), reporting
/// progress from 0 to 0.9.
fn read_aligned(
    mut file: File,
    path: &Path,
    report: &mut impl FnMut(f32) -> Result<()>,
) -> Result<Storage> {
    use std::io::Read;
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = usize::try_from(file.metadata().map_err(io_err)?.len())
        .map_err(|_| io_err(std::io::Error::other("file too large for this platform")))?;
    let mut words = vec![0u64; len.div_ceil(8)];
    // SAFETY: the Vec<u64> owns `words.len() * 8 >= len` initialized bytes; viewing them as u8
    // is valid for any bit pattern, and the view does not outlive this function's borrow.
    let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, len) };
    const CHUNK: usize = 16 << 20;
    for (i, chunk) in bytes.chunks_mut(CHUNK).enumerate() {
        file.read_exact(chunk).map_err(io_err)?;
        report(0.9 * ((i + 1) * CHUNK).min(len) as f32 / len.max(1) as f32)?;
    }
    Ok(Storage::Owned { words, len })
}
