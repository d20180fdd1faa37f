//! The device a plan is for: its memory, its memory bandwidth and its cores, whether they come
//! from a committed profile (`profiles.rs`) or were measured on this machine (`this_machine.rs`).

use serde::Serialize;

/// A CPU's integer SIMD level, as far as the cost model cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Simd {
    /// No usable SIMD (or none ember detects).
    Scalar,
    /// aarch64 Advanced SIMD without the dot-product extension.
    Neon,
    /// aarch64 NEON + `SDOT`/`UDOT` (Armv8.2-A FEAT_DotProd).
    Dotprod,
    /// aarch64 dotprod + `SMMLA` (Armv8.6-A FEAT_I8MM).
    I8mm,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 with VNNI.
    Avx512,
}

impl Simd {
    pub fn name(self) -> &'static str {
        match self {
            Simd::Scalar => "scalar",
            Simd::Neon => "neon",
            Simd::Dotprod => "dotprod",
            Simd::I8mm => "i8mm",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }

    /// The level ember's CPU kernels run at on a CPU with this one. ember has AVX2 and AVX-512
    /// kernels; on aarch64 it runs the portable Rust path (`ember_kernels::Isa::Scalar`) until
    /// NEON kernels exist, so ARM devices are predicted at that level, not at their hardware's.
    pub fn kernel_level(self) -> Simd {
        match self {
            Simd::Avx512 => Simd::Avx512,
            Simd::Avx2 => Simd::Avx2,
            _ => Simd::Scalar,
        }
    }
}

/// Everything the cost model needs to know about a device.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// Profile name (`pi5`, ...) or `this`.
    pub name: String,
    pub description: String,
    pub ram_bytes: u64,
    /// Memory one app can hold before the OS kills it or the machine swaps.
    pub usable_bytes: u64,
    /// Streaming read bandwidth the CPU cores reach together (bytes/s): what decode is bound by.
    pub read_bytes_per_s: f64,
    /// Cores a session's threads run on (performance cores on big.LITTLE chips).
    pub cores: usize,
    /// Clock of those cores (Hz).
    pub hz: f64,
    /// The hardware's SIMD level.
    pub simd: Simd,
    /// The level ember's kernels run at there (see [`Simd::kernel_level`]).
    pub kernel: Simd,
    /// ember's kernels timed on this very device (`ember plan --device this`, unless `--calibration-rates`);
    /// `None`: the calibration machine's per-cycle rates (`calibration.rs`), scaled by `hz`.
    #[serde(skip)]
    pub measured: Option<std::sync::Arc<super::kernel_probe::Rates>>,
}

impl Target {
    /// The per-cycle rate of `ty`'s products here.
    pub fn kernel_rate(&self, ty: ember_quant::GgmlType) -> super::calibration::KernelRate {
        self.measured
            .as_ref()
            .and_then(|m| m.kernels.iter().find(|(t, _)| *t == ty).map(|(_, r)| *r))
            .unwrap_or_else(|| super::calibration::kernel_rate(self.kernel, ty))
    }

    /// Attention FLOPs per cycle of one core here.
    pub fn attention_flops_per_cycle(&self) -> f64 {
        self.measured.as_ref().map_or_else(
            || super::calibration::attention_flops_per_cycle(self.kernel),
            |m| m.attention_flops_per_cycle,
        )
    }

    /// Cycles one token spends per layer on the calling thread alone.
    pub fn serial_cycles_per_layer(&self, n_embd: usize, n_ff: usize) -> f64 {
        match &self.measured {
            Some(m) => {
                m.serial.swiglu_cycles * n_ff as f64 + m.serial.vector_cycles * 2.0 * n_embd as f64
            }
            None => super::calibration::serial_cycles_per_layer(n_embd, n_ff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_devices_run_the_portable_kernels() {
        for s in [Simd::Neon, Simd::Dotprod, Simd::I8mm, Simd::Scalar] {
            assert_eq!(s.kernel_level(), Simd::Scalar);
        }
        assert_eq!(Simd::Avx2.kernel_level(), Simd::Avx2);
        assert_eq!(Simd::Avx512.kernel_level(), Simd::Avx512);
    }
}
