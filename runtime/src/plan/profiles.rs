//! Device profiles: public figures for the devices `ember plan` predicts for without running
//! there. Each figure has its source beside it; figures that are ember's estimates say so.
//!
//! Conventions:
//! - RAM in GiB (phones sold as "8 GB" carry 8 GiB of DRAM).
//! - `usable`: memory one app can hold. On Android and iOS this is not published anywhere as a
//!   number (the low-memory killer / jetsam decide at run time, from what else is running), so
//!   every phone figure is an estimate: on Android roughly RAM minus the 3–4 GiB the system,
//!   its services and the launcher keep; on iOS the per-app jetsam limit without the
//!   `com.apple.developer.kernel.increased-memory-limit` entitlement. Measure on the device
//!   (`ember plan --device this`, or `ActivityManager.MemoryInfo` / `os_proc_available_memory`)
//!   before trusting a small margin.
//! - `peak_gbs`: the DRAM interface's theoretical peak (transfer rate × bus width). What CPU
//!   cores reach with streaming reads is lower; no comparable public measurement exists for
//!   most of these chips, so decode uses [`STREAM_FRACTION`] of the peak (an estimate), except
//!   where a measurement is given.
//! - `cores`, `ghz`: the performance cores a session's threads should use and their clock
//!   (efficiency cores are left out; on mixed clusters the clock of the larger group).

use super::target::{Simd, Target};
use crate::{Error, Result};

/// Fraction of the DRAM peak that streaming reads from the CPU cores are assumed to reach on a
/// device with no measurement. An estimate: on x86 desktops and servers STREAM-type reads reach
/// 60–80% of peak; mobile SoCs share the interface with the GPU and NPU and their CPU clusters
/// are rarely measured alone. Replace it with a measurement (`ember plan --device this`).
pub const STREAM_FRACTION: f64 = 0.6;

const GIB: u64 = 1 << 30;

/// One device's public figures.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub description: &'static str,
    pub ram_gib: f64,
    pub usable_gib: f64,
    pub peak_gbs: f64,
    /// Streaming read bandwidth measured on the device (GB/s), when there is a measurement.
    pub measured_gbs: Option<f64>,
    pub cores: usize,
    pub ghz: f64,
    pub simd: Simd,
}

/// The committed profiles, smallest first.
pub const PROFILES: [Profile; 7] = [
    // Raspberry Pi 5, 8 GB. Sources: Raspberry Pi 5 product brief
    // (https://datasheets.raspberrypi.com/rpi5/raspberry-pi-5-product-brief.pdf): BCM2712,
    // 4× Cortex-A76 at 2.4 GHz, LPDDR4X-4267. The bus is 32 bits wide (one x32 package), so the
    // peak is 4267 MT/s × 4 B = 17.1 GB/s. Cortex-A76 implements FEAT_DotProd, not FEAT_I8MM
    // (Arm Cortex-A76 Technical Reference Manual).
    // usable: estimate — Raspberry Pi OS Lite keeps ~0.5 GiB; ~0.5 GiB more left as headroom.
    Profile {
        name: "pi5",
        description: "Raspberry Pi 5 (8 GB)",
        ram_gib: 8.0,
        usable_gib: 7.0,
        peak_gbs: 17.1,
        measured_gbs: None,
        cores: 4,
        ghz: 2.4,
        simd: Simd::Dotprod,
    },
    // 2023 flagship Android: Snapdragon 8 Gen 2 (SM8550, e.g. Galaxy S23 with 8 GB). Sources:
    // Qualcomm Snapdragon 8 Gen 2 product brief
    // (https://www.qualcomm.com/products/mobile/snapdragon/smartphones/snapdragon-8-series-mobile-platforms/snapdragon-8-gen-2-mobile-platform)
    // and https://wccftech.com/qualcomm-snapdragon-8-gen-2-goes-official/ (2022-11-15):
    // 1× Cortex-X3 at 3.2 GHz, 4× performance cores (Cortex-A715/A710) at 2.8 GHz, 3×
    // Cortex-A510 at 2.0 GHz; LPDDR5X at 4200 MHz (8400 MT/s) on a 64-bit bus: 67.2 GB/s.
    // Armv9 cores implement FEAT_I8MM. cores = X3 + the four 2.8 GHz cores, at 2.8 GHz.
    // usable: estimate (see the module note): 8 GiB − ~3.5 GiB for the system.
    Profile {
        name: "sd8gen2",
        description: "2023 flagship Android, Snapdragon 8 Gen 2 (8 GB)",
        ram_gib: 8.0,
        usable_gib: 4.5,
        peak_gbs: 67.2,
        measured_gbs: None,
        cores: 5,
        ghz: 2.8,
        simd: Simd::I8mm,
    },
    // 2025 flagship Android: Snapdragon 8 Elite (SM8750, e.g. Galaxy S25 with 12 GB). Sources:
    // https://www.xda-developers.com/qualcomm-snapdragon-8-elite/ (2024-10-21): 2× Oryon prime
    // cores at 4.32 GHz, 6× Oryon performance cores at 3.53 GHz, LPDDR5X at 5300 MHz;
    // https://geektopia.es/es/technology/2024/10/22/noticias/qualcomm-anuncia-el-snapdragon-8-elite-para-moviles-de-gama-alta.html:
    // 10600 MT/s, 84.8 GB/s (64-bit bus). Oryon implements FEAT_I8MM. ghz: the six 3.53 GHz cores' clock for all eight.
    // usable: estimate: 12 GiB − ~5 GiB for the system (One UI keeps more resident on 12 GB).
    Profile {
        name: "sd8elite",
        description: "2025 flagship Android, Snapdragon 8 Elite (12 GB)",
        ram_gib: 12.0,
        usable_gib: 7.0,
        peak_gbs: 84.8,
        measured_gbs: None,
        cores: 8,
        ghz: 3.53,
        simd: Simd::I8mm,
    },
    // Mid-range Android: MediaTek Dimensity 7300 (e.g. Motorola Edge 50 Neo, 8 GB). Sources:
    // MediaTek Dimensity 7300 page (https://www.mediatek.com/products/smartphones/mediatek-dimensity-7300)
    // and https://www.notebookcheck.net/Dimensity-7050-vs-Dimensity-7300_15080_18020.247596.0.html:
    // 4× Cortex-A78 at 2.5 GHz + 4× Cortex-A55, LPDDR5 up to 6400 Mbps. The bus width is not
    // published: a 64-bit bus (51.2 GB/s) is an estimate. Cortex-A78: FEAT_DotProd, no
    // FEAT_I8MM (Arm Cortex-A78 TRM).
    // usable: estimate: 8 GiB − ~4 GiB (mid-range vendor skins keep more services resident).
    Profile {
        name: "dimensity7300",
        description: "mid-range Android, Dimensity 7300 (8 GB)",
        ram_gib: 8.0,
        usable_gib: 4.0,
        peak_gbs: 51.2,
        measured_gbs: None,
        cores: 4,
        ghz: 2.5,
        simd: Simd::Dotprod,
    },
    // iPhone 15: A16 Bionic, 6 GB. Sources: https://www.apple.com/iphone-15/specs/ (A16,
    // 2 performance + 4 efficiency cores); RAM and the LPDDR5-6400 64-bit interface
    // (51.2 GB/s) are not published by Apple: figures from teardowns and press coverage of the
    // A16 launch (e.g. AnandTech, "Apple Announces iPhone 14 Pro", 2022-09-07), so estimates.
    // P-core clock 3.46 GHz (Geekbench reports of the A16). FEAT_I8MM is not assumed (Apple
    // does not document it for the A16).
    // usable: estimate — the default per-app jetsam limit on 6 GB iPhones is about half the
    // RAM; the increased-memory-limit entitlement raises it.
    Profile {
        name: "iphone15",
        description: "iPhone 15, A16 Bionic (6 GB)",
        ram_gib: 6.0,
        usable_gib: 3.0,
        peak_gbs: 51.2,
        measured_gbs: None,
        cores: 2,
        ghz: 3.46,
        simd: Simd::Dotprod,
    },
    // NVIDIA Jetson Orin Nano 8GB (original 15 W mode). Source: NVIDIA Jetson Orin Nano Series
    // Data Sheet (DS-11105-001): 6× Cortex-A78AE at up to 1.5 GHz, 8 GB 128-bit LPDDR5,
    // 68 GB/s (JetPack 6.1 "Super" mode: 1.7 GHz and 102 GB/s; not this profile). The memory is
    // shared with the GPU.
    // usable: estimate: 8 GiB − ~1.5 GiB for L4T and carve-outs (headless).
    Profile {
        name: "orin-nano",
        description: "Jetson Orin Nano 8GB (15 W)",
        ram_gib: 8.0,
        usable_gib: 6.5,
        peak_gbs: 68.0,
        measured_gbs: None,
        cores: 6,
        ghz: 1.5,
        simd: Simd::Dotprod,
    },
    // A 2-vCPU x86 VM: this project's development machine (AMD EPYC Zen 4 under KVM, 2 vCPUs,
    // 23.5 GiB; /proc/cpuinfo 2596 MHz; AVX-512 with VNNI). Sources: lscpu and /proc/meminfo on
    // 2026-12-02. Read bandwidth: the median of twelve readings that day, seven of
    // `ember plan --device this`'s probe and five of `bench/membw.c` with 2 threads
    // (`cc -O2 -mavx2 -pthread bench/membw.c -o membw && ./membw 2`); they range from 27 to
    // 43 GB/s minute to minute (the host is shared). usable: MemAvailable then, less 1 GiB.
    Profile {
        name: "x86-vm-2c",
        description: "2-vCPU x86 VM (AMD EPYC Zen 4, KVM, 24 GB)",
        ram_gib: 23.5,
        usable_gib: 21.0,
        peak_gbs: 0.0,
        measured_gbs: Some(MEASURED_VM_GBS),
        cores: 2,
        ghz: 2.6,
        simd: Simd::Avx512,
    },
];

/// Read bandwidth of the development VM (see its profile).
const MEASURED_VM_GBS: f64 = 34.0;

impl Profile {
    /// Streaming read bandwidth the cost model uses: the measurement, else the estimate.
    pub fn read_gbs(&self) -> f64 {
        self.measured_gbs.unwrap_or(self.peak_gbs * STREAM_FRACTION)
    }

    pub fn target(&self) -> Target {
        Target {
            name: self.name.into(),
            description: self.description.into(),
            ram_bytes: (self.ram_gib * GIB as f64) as u64,
            usable_bytes: (self.usable_gib * GIB as f64) as u64,
            read_bytes_per_s: self.read_gbs() * 1e9,
            cores: self.cores,
            hz: self.ghz * 1e9,
            simd: self.simd,
            kernel: self.simd.kernel_level(),
            measured: None,
        }
    }
}

/// The profile called `name` (case-insensitive), or an error that lists the known ones.
pub fn find(name: &str) -> Result<&'static Profile> {
    PROFILES
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::UnknownDevice {
            name: name.into(),
            known: known_names(),
        })
}

/// Every name `--device` accepts.
pub fn known_names() -> String {
    let mut names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
    names.extend(["this", "all"]);
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_consistent() {
        for (i, p) in PROFILES.iter().enumerate() {
            assert!(
                p.usable_gib > 0.0 && p.usable_gib <= p.ram_gib,
                "{}",
                p.name
            );
            assert!(
                p.read_gbs() > 1.0 && p.cores > 0 && p.ghz > 0.5,
                "{}",
                p.name
            );
            assert!(p.measured_gbs.is_some() || p.peak_gbs > 0.0, "{}", p.name);
            assert!(
                PROFILES[..i].iter().all(|q| q.name != p.name),
                "duplicate {}",
                p.name
            );
            assert!(p.name != "this" && p.name != "all");
        }
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let err = find("nokia-3310").unwrap_err().to_string();
        assert!(err.contains("nokia-3310"), "{err}");
        for p in &PROFILES {
            assert!(err.contains(p.name), "{err}");
        }
        assert_eq!(find("PI5").unwrap().name, "pi5");
    }

    #[test]
    fn estimated_bandwidth_is_a_fraction_of_the_peak() {
        let pi = find("pi5").unwrap();
        assert!((pi.read_gbs() - 17.1 * STREAM_FRACTION).abs() < 1e-9);
        assert_eq!(pi.target().kernel, Simd::Scalar);
    }
}
