//! Tests of the C ABI from Rust: the committed header is what cbindgen generates, and the
//! exported functions give what the Rust API gives.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;

use crate::generate::*;
use crate::model::*;
use crate::sampler::*;
use crate::session::*;
use crate::status::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Generate the header in memory from this crate's sources.
fn generate_header() -> Vec<u8> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("bindings/c/cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    out
}

#[test]
fn header_is_fresh() {
    let path = workspace_root().join("include/ember.h");
    let generated = generate_header();
    if std::env::var_os("EMBER_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/ember.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/ember.h is stale: regenerate it with \
         `EMBER_BLESS=1 cargo test --release -p ember-c header_is_fresh` and commit it"
    );
}
