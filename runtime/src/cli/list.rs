//! `ember list`: the models `ember pull` knows, which of them are downloaded, and the other
//! model files in the cache.

use std::path::Path;

use clap::Args;
use ember::pull::{Local, Options};

use crate::CliResult;

#[derive(Args)]
pub struct ListArgs {}

pub fn command(_: ListArgs) -> CliResult {
    let opts = Options::default();
    let registry = opts.registry()?;
    let dir = opts.cache_dir()?;
    println!("models directory: {}", dir.display());
    println!(
        "{:<36} {:<20} {:<8} {:<7} {:>9}  {:<19} HERE",
        "NAME", "ALIASES", "ARCH", "QUANT", "SIZE", "LICENSE"
    );
    for e in registry.entries() {
        let here = match ember::pull::local(e, &dir) {
            Local::Pulled(p) => format!("yes  {}", p.display()),
            Local::Partial(n) => format!("partial ({}%)", n * 100 / e.size.max(1)),
            Local::Absent => "no".into(),
        };
        println!(
            "{:<36} {:<20} {:<8} {:<7} {:>9}  {:<19} {here}",
            e.name,
            e.aliases.join(","),
            e.architecture,
            e.quantization,
            size(e.size),
            e.license
        );
    }
    let others = other_files(&dir, &registry);
    if !others.is_empty() {
        println!("\nother model files in {}:", dir.display());
        for (name, len) in others {
            println!("  {name:<52} {:>9}", size(len));
        }
    }
    Ok(())
}

/// `.gguf` files in `dir` that are no registry entry's file (put there by hand; `-m NAME`
/// finds them too).
fn other_files(dir: &Path, registry: &ember::pull::Registry) -> Vec<(String, u64)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, u64)> = read
        .filter_map(|d| d.ok())
        .filter_map(|d| {
            let name = d.file_name().into_string().ok()?;
            let is_other = name.to_ascii_lowercase().ends_with(".gguf")
                && !registry.entries().iter().any(|e| e.file == name);
            let meta = d.metadata().ok()?;
            (is_other && meta.is_file()).then_some((name, meta.len()))
        })
        .collect();
    out.sort();
    out
}

/// 98362432 → `93.8 MiB`.
fn size(bytes: u64) -> String {
    let mib = bytes as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else if mib >= 1.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
