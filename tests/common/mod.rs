//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember::{LoadParams, Model};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A model file the tests need: present, or a skip (a failure under CI, where it must be there).
pub fn asset(rel: &str) -> Option<PathBuf> {
    let path = root().join(rel);
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "{} missing: run scripts/setup_test_assets.sh",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("SKIP: {msg}");
    None
}

pub const SMOLLM2: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

pub fn smollm2() -> Option<Arc<Model>> {
    asset(SMOLLM2).map(|p| Arc::new(Model::load(p, &LoadParams::default()).unwrap()))
}

/// SmolLM2 requantized to Q4_0 by `ember quantize`: the same vocabulary, a numerically different
/// model (a draft, a consultant). Written once per test binary: tests run in parallel, the
/// first one to ask writes it and the others wait for it.
pub fn smollm2_q4_0() -> Option<PathBuf> {
    static FILE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let src = asset(SMOLLM2)?;
        let out = std::env::temp_dir().join(format!(
            "ember-smollm2-q4_0-{}.safetensors",
            std::process::id()
        ));
        ember::quantize::quantize(
            &src,
            &out,
            ember::quantize::parse_type("q4_0").unwrap(),
            |_, _| {},
        )
        .unwrap();
        Some(out)
    })
    .clone()
}
