//! Resumable HTTP downloads into `FILE.partial`, hashed while written, renamed to `FILE` only
//! once size and sha256 match: a final file in the cache is always a whole, checked one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Tries in a row that add no byte before giving up (a dead server, a refused connection).
const MAX_STALLS: u32 = 3;
/// Tries in all: a server that drops every connection after a few bytes ends too.
const MAX_TRIES: u32 = 50;

/// What a download must turn out to be. `None`: unknown (then only the server's word counts).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expected<'a> {
    pub size: Option<u64>,
    pub sha256: Option<&'a str>,
}

/// The agent every request of a pull goes through. No overall timeout (a model takes as long
/// as it takes), but a stalled connection fails and is resumed.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        // 206, 416 and 404 are answers to act on, not errors.
        .http_status_as_error(false)
        .tls_config(system_roots())
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("ember/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// `dir/name` → `dir/name.partial`.
pub(crate) fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

/// A file being written, with the length and sha256 of what it holds so far.
pub(crate) struct HashedFile {
    path: PathBuf,
    file: File,
    len: u64,
    hash: Sha256,
    /// Writing past this many bytes is an error: a server or a zip member that sends more than
    /// the registry says cannot fill the disk.
    limit: Option<u64>,
}

impl HashedFile {
    /// A new, empty file at `path` (an old one is truncated).
    pub fn create(path: &Path, limit: Option<u64>) -> Result<HashedFile> {
        let file = File::create(path).map_err(|e| io_err(path, e))?;
        Ok(HashedFile {
            path: path.to_owned(),
            file,
            len: 0,
            hash: Sha256::new(),
            limit,
        })
    }

    /// `path` as it is, to append to: what it holds is read once to seed the hash.
    fn resume(path: &Path, limit: Option<u64>) -> Result<HashedFile> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let mut hash = Sha256::new();
        let len = io::copy(&mut file, &mut HashWriter(&mut hash)).map_err(|e| io_err(path, e))?;
        let mut f = HashedFile {
            path: path.to_owned(),
            file,
            len,
            hash,
            limit,
        };
        if limit.is_some_and(|l| len > l) {
            f.restart()?;
        }
        Ok(f)
    }

    /// Empty the file and start over.
    fn restart(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| io_err(&self.path, e))?;
        self.len = 0;
        self.hash = Sha256::new();
        Ok(())
    }

    /// Delete the file: its bytes are known to be wrong. (Emptied first: where an open file
    /// cannot be removed, an empty one is left, which resumes nothing.)
    pub fn discard(&mut self) {
        let _ = self.restart();
        let _ = fs::remove_file(&self.path);
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Check size and sha256, then rename to `dest`. On a mismatch the file is deleted: its
    /// bytes are wrong somewhere, so resuming from them could never succeed.
    pub fn finish(self, dest: &Path, want: Expected<'_>) -> Result<()> {
        let HashedFile {
            path,
            file,
            len,
            hash,
            ..
        } = self;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        drop(file);
        let got = hex(&hash.finalize());
        let wrong = if want.size.is_some_and(|s| s != len) {
            Some(format!("{len} bytes, expected {}", want.size.unwrap_or(0)))
        } else if want.sha256.is_some_and(|s| s != got) {
            Some(format!(
                "sha256 {got}, expected {}",
                want.sha256.unwrap_or("")
            ))
        } else {
            None
        };
        if let Some(wrong) = wrong {
            let _ = fs::remove_file(&path);
            return Err(Error::Download(format!(
                "{}: corrupt download ({wrong}); deleted it",
                dest.display()
            )));
        }
        fs::rename(&path, dest).map_err(|e| io_err(dest, e))
    }
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.limit.is_some_and(|l| self.len + buf.len() as u64 > l) {
            return Err(io::Error::other(format!(
                "more than the expected {} bytes",
                self.limit.unwrap_or(0)
            )));
        }
        self.file.write_all(buf)?;
        self.hash.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Feeds a hasher through `io::copy`.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Download `url` to `dest` through `dest.partial`, resuming what an earlier run left there.
/// `progress(done, total)` is in bytes of this file (`total` 0 while unknown). A `dest` already
/// there of the expected size is taken as done: only checked files are ever renamed to it.
pub(crate) fn fetch(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    want: Expected<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    if let Ok(m) = fs::metadata(dest) {
        if want.size.is_none_or(|s| s == m.len()) {
            return Ok(());
        }
    }
    let partial = partial_path(dest);
    let mut out = HashedFile::resume(&partial, want.size)?;
    let (mut stalls, mut tries) = (0, 0);
    loop {
        let before = out.len();
        let why = match attempt(agent, url, &mut out, want.size, progress) {
            Ok(None) => break,
            Ok(Some(why)) => why,
            Err(e) => {
                // No empty partial left behind by a 404.
                if out.len() == 0 {
                    out.discard();
                }
                return Err(e);
            }
        };
        tries += 1;
        stalls = if out.len() > before { 0 } else { stalls + 1 };
        if stalls >= MAX_STALLS || tries >= MAX_TRIES {
            if out.len() == 0 {
                out.discard();
                return Err(Error::Download(format!("{url}: {why}")));
            }
            return Err(Error::Download(format!(
                "{url}: {why}; {} bytes are kept in {}: run again to resume",
                out.len(),
                partial.display()
            )));
        }
        // A server that just failed is given a moment; one that sent bytes is asked again now.
        std::thread::sleep(Duration::from_millis(300 * u64::from(stalls)));
    }
    out.finish(dest, want)
}

/// One request. `Ok(None)`: the body ended where it should; `Ok(Some(why))`: it was cut short
/// or the server was briefly unwell, worth another try; `Err`: a definite failure.
fn attempt(
    agent: &ureq::Agent,
    url: &str,
    out: &mut HashedFile,
    size: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<String>> {
    if size == Some(out.len()) {
        return Ok(None);
    }
    let mut req = agent.get(url);
    if out.len() > 0 {
        req = req.header("Range", &format!("bytes={}-", out.len()));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(e) => return Ok(Some(e.to_string())),
    };
    let status = resp.status().as_u16();
    match status {
        206 => {
            let start = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(range_start);
            if start != Some(out.len()) {
                // Not the bytes asked for: start over with a plain request.
                out.restart()?;
                return Ok(Some("the server resumed at another offset".into()));
            }
        }
        // A 200 to a range request is the whole file: start over.
        200 => out.restart()?,
        // The partial is no prefix of what the server has (or the server changed the file).
        416 => {
            out.restart()?;
            return Ok(Some("HTTP 416 to a resume: starting over".into()));
        }
        500..=599 | 429 => return Ok(Some(format!("HTTP {status}"))),
        _ => return Err(Error::Download(format!("{url}: HTTP {status}"))),
    }
    let total = size
        .or_else(|| resp.body().content_length().map(|n| n + out.len()))
        .unwrap_or(0);
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Some(format!("connection lost: {e}"))),
        };
        if let Some(s) = size.filter(|&s| out.len() + n as u64 > s) {
            out.discard();
            return Err(Error::Download(format!(
                "{url}: the server sent more than the expected {s} bytes; deleted the download"
            )));
        }
        out.write_all(&buf[..n]).map_err(|e| io_err(&out.path, e))?;
        progress(out.len(), total);
    }
    match size {
        Some(s) if out.len() < s => Ok(Some(format!(
            "the connection closed after {} of {s} bytes",
            out.len()
        ))),
        _ => Ok(None),
    }
}

/// `bytes START-END/TOTAL` → START.
fn range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// TLS trusting the operating system's certificate store (where a company proxy's CA is
/// installed), not only the roots compiled into the binary.
pub(crate) fn system_roots() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
