//! Hugging Face checkpoints: a directory with `config.json`, `tokenizer.json` (plus
//! `tokenizer_config.json`) and `model.safetensors` or shards listed in
//! `model.safetensors.index.json`; and ember's own quantized `.safetensors` files, which carry
//! the same three JSON documents in their `__metadata__` (see `quant/FORMAT.md`).
//!
//! ```text
//! config.json ─► config::parse ─► Config (NeoX RoPE: HF q/k rows are unpermuted)
//! *.safetensors ─► ember_quant::safetensors ─► weights::TensorTable ─► weights::build
//! tokenizer.json + tokenizer_config.json ─► tokenizer::parse ─► VocabData ─► Tokenizer
//! ```

pub mod config;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// `__metadata__` keys of ember's quantized files.
pub mod keys {
    pub const FORMAT: &str = "format";
    pub const FORMAT_VALUE: &str = "ember";
    pub const VERSION: &str = "ember.version";
    pub const CONFIG: &str = "config.json";
    pub const TOKENIZER: &str = "tokenizer.json";
    pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
    pub const PRE_TOKENIZER: &str = "ember.pre_tokenizer";
    pub const NAME: &str = "ember.name";
}

/// The JSON documents describing a checkpoint.
#[derive(Clone, Debug)]
pub struct Documents {
    pub config: String,
    pub tokenizer: String,
    pub tokenizer_config: Option<String>,
}

/// The files of an HF checkpoint directory.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub dir: PathBuf,
    /// Weight files, in shard order.
    pub shards: Vec<PathBuf>,
    pub docs: Documents,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The JSON documents of directory `dir`.
pub fn read_documents(dir: &Path) -> Result<Documents> {
    Ok(Documents {
        config: read(&dir.join("config.json"))?,
        tokenizer: read(&dir.join("tokenizer.json"))?,
        tokenizer_config: read_optional(&dir.join("tokenizer_config.json"))?,
    })
}

/// Find the weight files of a checkpoint directory: the shards named by
/// `model.safetensors.index.json`, else `model.safetensors`, else every `*.safetensors`.
pub fn open_dir(dir: &Path) -> Result<Checkpoint> {
    let docs = read_documents(dir)?;
    let index_path = dir.join("model.safetensors.index.json");
    let shards = if let Some(index) = read_optional(&index_path)? {
        let bad = |reason: &str| Error::BadMetadata {
            key: "model.safetensors.index.json".into(),
            reason: reason.into(),
        };
        let v: serde_json::Value = serde_json::from_str(&index).map_err(|e| bad(&e.to_string()))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no weight_map object"))?;
        let mut files: Vec<String> = Vec::new();
        for f in map.values() {
            let f = f
                .as_str()
                .ok_or_else(|| bad("a weight_map value is not a string"))?;
            if f.contains('/') || f.contains('\\') || f.starts_with('.') {
                return Err(bad("shard names must be plain file names"));
            }
            if !files.iter().any(|x| x == f) {
                files.push(f.to_owned());
            }
        }
        files.sort();
        files.into_iter().map(|f| dir.join(f)).collect()
    } else if dir.join("model.safetensors").is_file() {
        vec![dir.join("model.safetensors")]
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        files
    };
    if shards.is_empty() {
        return Err(Error::MissingTensor(format!(
            "{}: no *.safetensors weight files",
            dir.display()
        )));
    }
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        shards,
        docs,
    })
}
