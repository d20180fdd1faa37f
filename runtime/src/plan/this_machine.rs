//! `--device this`: the machine ember runs on, measured rather than looked up. Memory from
//! /proc/meminfo, cores and SIMD level from the OS and CPUID (or the aarch64 feature
//! registers), the clock from /proc/cpuinfo or cpufreq, and the read bandwidth with a short
//! streaming-read probe (well under a second). Measured once per process.

use std::sync::{Arc, Barrier, OnceLock};
use std::time::Instant;

use super::target::{Simd, Target};
use crate::{Error, Result};

/// This machine, measured on first use (a failure is not cached: the next call tries again).
pub fn target() -> Result<Target> {
    static MEASURED: OnceLock<Target> = OnceLock::new();
    if let Some(t) = MEASURED.get() {
        return Ok(t.clone());
    }
    let t = measure()?;
    Ok(MEASURED.get_or_init(|| t).clone())
}

fn measure() -> Result<Target> {
    let meminfo = read("/proc/meminfo")?;
    let field = |key: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    let ram_bytes = field("MemTotal:").ok_or_else(|| bad("/proc/meminfo has no MemTotal"))?;
    // What one process can take now without pushing others out: the kernel's own estimate.
    let usable_bytes = field("MemAvailable:").unwrap_or(ram_bytes / 2);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (hz, clock_note) = match clock_hz() {
        Some(hz) => (hz, String::new()),
        None => (2e9, ", clock not reported: 2.0 GHz assumed".to_string()),
    };
    let simd = simd();
    let kernel = kernel_level();
    let read_bytes_per_s = read_bandwidth(cores, usable_bytes)?;
    Ok(Target {
        name: "this".into(),
        description: format!(
            "this machine: {} ({cores} cores, {}, kernels {}{clock_note})",
            cpu_name().unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            simd.name(),
            kernel.name()
        ),
        ram_bytes,
        usable_bytes,
        read_bytes_per_s,
        cores,
        hz,
        simd,
        kernel,
        measured: None,
    })
}

/// `t` (this machine) with ember's kernels timed here as well (about six seconds): the
/// calibration machine's per-cycle rates are only a guess for another CPU, whose caches,
/// turbo clock and memory system differ.
pub fn with_measured_kernels(mut t: Target) -> Result<Target> {
    t.measured = Some(std::sync::Arc::new(super::kernel_probe::measure_current(
        t.hz,
    )?));
    t.description.push_str(", kernels timed here");
    Ok(t)
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}

fn bad(what: &str) -> Error {
    Error::InvalidArgument(what.into())
}

/// The CPU's name from /proc/cpuinfo (x86 `model name`; aarch64 often has none).
fn cpu_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// The highest clock a core reports: cpufreq's maximum, else /proc/cpuinfo's `cpu MHz`.
fn clock_hz() -> Option<f64> {
    let max_khz = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok());
    if let Some(khz) = max_khz {
        return Some(khz * 1e3);
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split_once(':')?.1.trim().parse::<f64>().ok())
        .reduce(f64::max)
        .map(|mhz| mhz * 1e6)
}

#[cfg(target_arch = "x86_64")]
fn simd() -> Simd {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni") {
        Simd::Avx512
    } else if has!("avx2") && has!("fma") {
        Simd::Avx2
    } else {
        Simd::Scalar
    }
}

#[cfg(target_arch = "aarch64")]
fn simd() -> Simd {
    use std::arch::is_aarch64_feature_detected as has;
    if has!("i8mm") {
        Simd::I8mm
    } else if has!("dotprod") {
        Simd::Dotprod
    } else {
        Simd::Neon
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn simd() -> Simd {
    Simd::Scalar
}

/// The level ember's kernels will actually use here: the kernels' own choice (which honours
/// `EMBER_ISA`).
fn kernel_level() -> Simd {
    match ember_kernels::Isa::current() {
        ember_kernels::Isa::Avx512 => Simd::Avx512,
        ember_kernels::Isa::Avx2 => Simd::Avx2,
        ember_kernels::Isa::Scalar => Simd::Scalar,
        ember_kernels::Isa::Neon => Simd::Neon,
        ember_kernels::Isa::Dotprod => Simd::Dotprod,
        ember_kernels::Isa::I8mm => Simd::I8mm,
    }
}

/// Bytes read by the bandwidth probe: larger than any last-level cache (the largest seen on
/// this project's machines is 300 MiB), bounded by what the machine has free; filling it is
/// most of the probe's half second.
fn probe_bytes(available: u64) -> usize {
    let want: u64 = 512 << 20;
    want.min(available / 4).max(64 << 20) as usize
}

/// Streaming read bandwidth of `threads` threads together (bytes/s): each thread fills its own
/// part of a buffer (so every page is resident and first-touch local), then all read their
/// parts at once; best of five passes. The threads time themselves: a pass lasts from the
/// first start to the last end (a coordinating thread could be descheduled on a busy machine).
/// Plain spawned threads, not scoped ones: a scope would give a C caller's thread a handle
/// that lives until the process ends. If the OS refuses a thread, those that started measure.
fn read_bandwidth(threads: usize, available: u64) -> Result<f64> {
    const PASSES: usize = 5;
    let words_per_thread = probe_bytes(available) / threads / 8;
    // The barrier is made once the number of threads that really started is known.
    let gate: Arc<OnceLock<Barrier>> = Arc::default();
    let mut handles = Vec::new();
    for t in 0..threads {
        let gate = gate.clone();
        let spawned = std::thread::Builder::new()
            .name("ember-membw".into())
            .spawn(move || {
                // Not zeros: a zeroed allocation may map every page to the one zero page.
                let part = vec![t as u64 | 1; words_per_thread];
                let barrier = loop {
                    match gate.get() {
                        Some(b) => break b,
                        None => std::thread::yield_now(),
                    }
                };
                (0..PASSES)
                    .map(|_| {
                        barrier.wait();
                        let start = Instant::now();
                        std::hint::black_box(sum(&part));
                        (start, Instant::now())
                    })
                    .collect::<Vec<_>>()
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(_) => break,
        }
    }
    if handles.is_empty() {
        return Err(Error::InvalidArgument(
            "cannot measure the memory bandwidth: no thread could be started".into(),
        ));
    }
    let n = handles.len();
    let _ = gate.set(Barrier::new(n));
    let spans: Vec<Vec<(Instant, Instant)>> =
        handles.into_iter().filter_map(|h| h.join().ok()).collect();
    let bytes = (words_per_thread * n * 8) as f64;
    Ok((0..PASSES)
        .filter_map(|pass| {
            let start = spans.iter().map(|s| s[pass].0).min()?;
            let end = spans.iter().map(|s| s[pass].1).max()?;
            Some(bytes / (end - start).as_secs_f64())
        })
        .fold(0.0, f64::max))
}

/// A sum the compiler vectorizes, with independent accumulators so the loads are the limit.
fn sum(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    for chunk in words.chunks_exact(8) {
        for (a, &w) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(w);
        }
    }
    acc.iter().fold(0, |s, &a| s.wrapping_add(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_is_measured() {
        let t = target().unwrap();
        assert!(t.ram_bytes > 0 && t.usable_bytes <= t.ram_bytes);
        assert!(t.cores >= 1 && t.hz > 1e8);
        assert!(t.read_bytes_per_s > 1e8, "{} B/s", t.read_bytes_per_s);
        assert!(t.kernel == t.kernel.kernel_level());
    }

    #[test]
    fn probe_size_is_bounded() {
        assert_eq!(probe_bytes(64 << 30), 512 << 20);
        assert_eq!(probe_bytes(1 << 30), 256 << 20);
        assert_eq!(probe_bytes(0), 64 << 20);
        assert_eq!(sum(&[3; 64]), 192);
    }
}
