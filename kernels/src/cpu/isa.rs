//! Which instruction-set level the kernels run at, chosen once per process.
//!
//! Detection runs on first use and is cached in a `OnceLock`, so the hot path pays one load.
//! `EMBER_ISA=scalar|avx2|avx512` forces a level (for tests and benchmarks); a forced level the
//! CPU cannot run is clamped down to the best level it can, so the variable can never make a
//! kernel execute an unsupported instruction.

use std::sync::OnceLock;

/// An instruction-set level. Ordered: a higher level implies every lower one is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, every target. Numerically the reference ("scalar twin").
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ + VNNI (on top of everything `Avx2` needs).
    Avx512,
}

impl Isa {
    /// Lowercase name, as accepted by `EMBER_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parse an `EMBER_ISA` value.
    pub fn from_name(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// The best level this CPU supports (ignores `EMBER_ISA`).
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// The level kernels use: `EMBER_ISA` if set (clamped to [`Isa::detected`]), else the best.
    pub fn current() -> Isa {
        static CURRENT: OnceLock<Isa> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let best = Isa::detected();
            match std::env::var("EMBER_ISA")
                .ok()
                .as_deref()
                .and_then(Isa::from_name)
            {
                Some(forced) => forced.min(best),
                None => best,
            }
        })
    }

    /// Every level this CPU can run, lowest first (tests iterate over it).
    pub fn available() -> impl Iterator<Item = Isa> {
        let best = Isa::detected();
        [Isa::Scalar, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(move |&i| i <= best)
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    let avx2 = has!("avx2") && has!("fma") && has!("f16c");
    let avx512 = avx2
        && has!("avx512f")
        && has!("avx512bw")
        && has!("avx512vl")
        && has!("avx512dq")
        && has!("avx512vnni");
    if avx512 {
        Isa::Avx512
    } else if avx2 {
        Isa::Avx2
    } else {
        Isa::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Scalar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_names_round_trip() {
        for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name("neon"), None);
    }

    #[test]
    fn current_never_exceeds_detected() {
        eprintln!("detected ISA: {}", Isa::detected());
        assert!(Isa::current() <= Isa::detected());
        assert_eq!(Isa::available().next(), Some(Isa::Scalar));
    }
}
