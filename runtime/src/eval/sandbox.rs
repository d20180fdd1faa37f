//! Running a task's Python test on a model's answer: a child process in a fresh temporary
//! folder, isolated mode (`-I`: no user site, no environment variables, no cwd on the path),
//! an empty environment, no network, a memory limit, and a wall-clock limit after which it is
//! killed. Model output is untrusted code: this keeps an accident (an endless loop, a runaway
//! allocation, a stray download) from harming the run; it is not a security boundary against a
//! determined attacker (run untrusted task files in a container for that).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Prepended to every program: leave the network namespace where the kernel lets us (an
/// unprivileged user namespace), and in any case make sockets unusable; cap memory at 1 GiB.
const GUARD: &str = r#"
import os as _os, socket as _socket
try:
    _os.unshare(_os.CLONE_NEWUSER | _os.CLONE_NEWNET)
except Exception:
    pass
def _no_network(*args, **kwargs):
    raise OSError("network access is disabled in ember eval tests")
_socket.socket = _no_network
_socket.create_connection = _no_network
_socket.getaddrinfo = _no_network
try:
    import resource as _resource
    _resource.setrlimit(_resource.RLIMIT_AS, (1 << 30, 1 << 30))
except Exception:
    pass
del _os, _socket, _no_network
"#;

/// How a test run ended.
#[derive(Debug)]
pub struct PythonOutcome {
    pub success: bool,
    /// For a failure: the exit status or the time-out, and the end of stderr.
    pub reason: String,
}

/// The interpreter: `EMBER_PYTHON`, else `python3`.
pub fn interpreter() -> String {
    std::env::var("EMBER_PYTHON")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Whether the interpreter starts at all (checked once before a run with `test` items).
pub fn check_interpreter() -> Result<(), String> {
    let python = interpreter();
    match Command::new(&python)
        .args(["-I", "-c", "import sys; sys.exit(0)"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{python}` exited with {s}")),
        Err(e) => Err(format!(
            "`{python}` cannot be started ({e}): install Python 3 or set EMBER_PYTHON"
        )),
    }
}

/// A temporary folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ember-eval-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `program` (the guard goes first) and wait at most `timeout_s` seconds.
pub fn run_python(program: &str, timeout_s: f64) -> std::io::Result<PythonOutcome> {
    let dir = TempDir::new()?;
    let file = dir.0.join("item.py");
    std::fs::write(&file, format!("{GUARD}\n{program}"))?;
    let mut child = Command::new(interpreter())
        .arg("-I")
        .arg("-B")
        .arg(&file)
        .current_dir(&dir.0)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drain stderr on a thread so a chatty program cannot block on a full pipe.
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(1 << 20).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let tail = last_lines(&stderr, 3);
    Ok(match status {
        Some(s) if s.success() => PythonOutcome {
            success: true,
            reason: String::new(),
        },
        Some(s) => PythonOutcome {
            success: false,
            reason: format!("{s}: {tail}"),
        },
        None => PythonOutcome {
            success: false,
            reason: format!("timed out after {timeout_s} s"),
        },
    })
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // These need a Python 3 on the machine, as `ember eval` itself does for `test` items.
    #[test]
    fn passing_failing_and_endless_programs() {
        if check_interpreter().is_err() && std::env::var_os("CI").is_none() {
            eprintln!("no python3: skipped");
            return;
        }
        assert!(run_python("assert 1 + 1 == 2", 10.0).unwrap().success);
        let fail = run_python("assert 1 + 1 == 3, 'arithmetic'", 10.0).unwrap();
        assert!(!fail.success);
        assert!(fail.reason.contains("AssertionError"), "{}", fail.reason);
        let slow = run_python("while True: pass", 0.5).unwrap();
        assert!(!slow.success && slow.reason.contains("timed out"));
        let net = run_python(
            "import socket\nsocket.create_connection(('127.0.0.1', 9))",
            10.0,
        )
        .unwrap();
        assert!(
            !net.success && net.reason.contains("network"),
            "{}",
            net.reason
        );
    }
}
