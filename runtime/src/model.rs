//! A loaded model: the memory-mapped file, its architecture definition and its tokenizer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ember_quant::gguf::Gguf;

use crate::arch::llama::Llama;
use crate::arch::WeightData;
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

/// The model file's bytes: a read-only memory map, or an owned, 8-byte aligned copy.
enum Storage {
    Mapped(memmap2::Mmap),
    Owned { words: Vec<u64>, len: usize },
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
        }
    }
}

/// A model ready to run: immutable, shareable between sessions and threads (`Arc<Model>`).
pub struct Model {
    path: PathBuf,
    storage: Storage,
    arch: Llama,
    tokenizer: Tokenizer,
    chat_template: Option<String>,
    name: Option<String>,
    load_time: Duration,
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
        let io_err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io_err)?;
        let storage = if params.use_mmap {
            // SAFETY: the map is read-only. The usual mmap caveat applies: if another process
            // truncates or rewrites the file while it is mapped, reads may fault or see new
            // bytes. Like llama.cpp, we accept that model files are not modified while in use.
            Storage::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?)
        } else {
            read_aligned(file, &path, &mut report)?
        };
        report(0.9)?;
        let gguf = Gguf::parse(storage.bytes()).map_err(|source| Error::Gguf {
            path: path.clone(),
            source,
        })?;
        let arch = Llama::from_gguf(&gguf)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        if tokenizer.n_vocab() != arch.config.n_vocab {
            return Err(Error::BadMetadata {
                key: "tokenizer.ggml.tokens".into(),
                reason: format!(
                    "{} tokens, but the output layer has {} rows",
                    tokenizer.n_vocab(),
                    arch.config.n_vocab
                ),
            });
        }
        let chat_template = gguf.get_str("tokenizer.chat_template").map(str::to_owned);
        let name = gguf.get_str("general.name").map(str::to_owned);
        drop(gguf);
        report(1.0)?;
        Ok(Model {
            path,
            storage,
            arch,
            tokenizer,
            chat_template,
            name,
            load_time: start.elapsed(),
        })
    }

    /// The file's bytes (the memory map).
    pub fn data(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// Where the weights' bytes are, for the forward pass.
    pub fn weight_data(&self) -> &dyn WeightData {
        self
    }

    pub fn arch(&self) -> &Llama {
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

    /// Time taken by `load` (map + parse + build).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Size of the model file in bytes.
    pub fn file_size(&self) -> u64 {
        self.data().len() as u64
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

/// Read the whole file into 8-byte aligned memory (so blocks can be viewed in place), reporting
/// progress from 0 to 0.9.
impl WeightData for Model {
    fn file(&self, _index: usize) -> &[u8] {
        self.storage.bytes()
    }
}

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
