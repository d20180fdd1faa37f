//! Which instruction-set level the kernels run at, chosen once per process.
//!
//! Detection runs on first use and is cached in a `OnceLock`, so the hot path pays one load.
//! `EMBER_ISA=scalar|avx2|avx512` (x86-64) or `EMBER_ISA=scalar|neon|dotprod|i8mm` (aarch64)
//! forces a level (for tests and benchmarks); a forced level the CPU cannot run is clamped down
//! to the best level it can ([`Isa::clamped`]), so the variable can never make a kernel execute
//! an unsupported instruction. A level of the other architecture means the scalar path.

use std::sync::OnceLock;

/// An instruction-set level.
///
/// Ordered within one architecture: a higher x86-64 level implies every lower x86-64 level is
/// usable, and likewise for the aarch64 levels; `Scalar` is below all of them. Across
/// architectures the derived order (every aarch64 level above every x86-64 one) means nothing:
/// use [`Isa::clamped`] (never a bare `min` with [`Isa::detected`]) to turn a requested level
/// into one this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, every target. Numerically the reference ("scalar twin").
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ + VNNI (on top of everything `Avx2` needs).
    Avx512,
    /// aarch64 Advanced SIMD (Armv8.0 NEON, every aarch64 CPU).
    Neon,
    /// aarch64 NEON + `SDOT` (Armv8.2-A FEAT_DotProd).
    Dotprod,
    /// aarch64 dotprod + `SMMLA` (Armv8.6-A FEAT_I8MM).
    I8mm,
}

/// Every level, lowest first within each architecture.
const ALL: [Isa; 6] = [
    Isa::Scalar,
    Isa::Avx2,
    Isa::Avx512,
    Isa::Neon,
    Isa::Dotprod,
    Isa::I8mm,
];

/// The architecture a level belongs to (`Any`: every target).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arch {
    Any,
    X86_64,
    Aarch64,
}

impl Isa {
    fn arch(self) -> Arch {
        match self {
            Isa::Scalar => Arch::Any,
            Isa::Avx2 | Isa::Avx512 => Arch::X86_64,
            Isa::Neon | Isa::Dotprod | Isa::I8mm => Arch::Aarch64,
        }
    }

    /// Lowercase name, as accepted by `EMBER_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
            Isa::I8mm => "i8mm",
        }
    }

    /// Parse an `EMBER_ISA` value.
    pub fn from_name(s: &str) -> Option<Isa> {
        let s = s.trim().to_ascii_lowercase();
        ALL.into_iter().find(|i| i.name() == s)
    }

    /// The best level this CPU supports (ignores `EMBER_ISA`).
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// This level if the CPU runs it; a level of this CPU's architecture above
    /// [`Isa::detected`] becomes `detected()`; a level of another architecture becomes `Scalar`.
    pub fn clamped(self) -> Isa {
        let best = Isa::detected();
        if self.arch() == Arch::Any || self.arch() != best.arch() {
            // `best` may itself be `Scalar` (an x86-64 CPU without AVX2): then every x86-64
            // level lands here too, which is right, since none of them is usable.
            Isa::Scalar
        } else {
            self.min(best)
        }
    }

    /// The level kernels use: `EMBER_ISA` if set ([`clamped`](Isa::clamped)), else the best.
    pub fn current() -> Isa {
        static CURRENT: OnceLock<Isa> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            match std::env::var("EMBER_ISA")
                .ok()
                .as_deref()
                .and_then(Isa::from_name)
            {
                Some(forced) => forced.clamped(),
                None => Isa::detected(),
            }
        })
    }

    /// Every level this CPU can run, lowest first (tests iterate over it): on x86-64 a prefix of
    /// `Scalar, Avx2, Avx512`, on aarch64 of `Scalar, Neon, Dotprod, I8mm`.
    pub fn available() -> impl Iterator<Item = Isa> {
        ALL.into_iter().filter(|&i| i.clamped() == i)
    }

    /// Whether this CPU runs this level.
    pub fn is_available(self) -> bool {
        self.clamped() == self
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

#[cfg(target_arch = "aarch64")]
fn detect() -> Isa {
    use std::arch::is_aarch64_feature_detected as has;
    // Each level needs the ones below it: a CPU (or emulator) reporting i8mm without dotprod
    // gets the NEON level only.
    if !has!("neon") {
        Isa::Scalar
    } else if !has!("dotprod") {
        Isa::Neon
    } else if !has!("i8mm") {
        Isa::Dotprod
    } else {
        Isa::I8mm
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Isa {
    Isa::Scalar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_names_round_trip() {
        for isa in ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
            assert_eq!(Isa::from_name(&isa.name().to_uppercase()), Some(isa));
        }
        assert_eq!(Isa::from_name("sse2"), None);
        assert_eq!(Isa::from_name(""), None);
    }

    #[test]
    fn current_never_exceeds_detected() {
        eprintln!("detected ISA: {}", Isa::detected());
        eprintln!("current ISA: {}", Isa::current());
        let avail: Vec<Isa> = Isa::available().collect();
        eprintln!("available ISA levels: {avail:?}");
        assert!(Isa::current().is_available());
        assert!(Isa::current() <= Isa::detected());
        assert_eq!(avail.first(), Some(&Isa::Scalar));
        assert_eq!(avail.last(), Some(&Isa::detected()));
        assert!(avail.windows(2).all(|w| w[0] < w[1]));
        // Levels of one architecture only.
        assert!(avail
            .iter()
            .all(|i| i.arch() == Arch::Any || i.arch() == avail[avail.len() - 1].arch()));
        // Test scripts set EMBER_EXPECT_ISA to the level the emulated CPU model must give, so
        // a log proves each level really ran.
        if let Ok(want) = std::env::var("EMBER_EXPECT_ISA") {
            assert_eq!(Isa::detected().name(), want.trim().to_ascii_lowercase());
        }
    }

    #[test]
    fn clamping_is_per_architecture() {
        let best = Isa::detected();
        for isa in ALL {
            let c = isa.clamped();
            assert!(c.is_available(), "{isa} -> {c}");
            if isa.is_available() {
                assert_eq!(c, isa);
            }
        }
        assert_eq!(Isa::Scalar.clamped(), Isa::Scalar);
        #[cfg(target_arch = "aarch64")]
        {
            assert_eq!(Isa::Avx512.clamped(), Isa::Scalar);
            assert_eq!(Isa::I8mm.clamped(), best);
            assert!(best >= Isa::Neon, "every aarch64 CPU has NEON");
        }
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(Isa::I8mm.clamped(), Isa::Scalar);
            assert_eq!(Isa::Avx512.clamped(), best);
        }
        let _ = best;
    }
}
