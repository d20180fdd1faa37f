//! Which engine runs a session's forward pass.

use std::fmt;
use std::str::FromStr;

/// Where a session computes (`--device` on the CLI, `SessionParams::device` in the API).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// ember's own SIMD kernels on the CPU (zero-copy weights, integer dot products).
    #[default]
    Cpu,
    /// The burn GPU backend on wgpu (Vulkan, Metal, DX12); an error if no adapter is found.
    Gpu,
    /// A hardware GPU if there is one, else the CPU path (and the session says why).
    Auto,
    /// The GPU backend's burn graph on burn-ndarray: the portable reference for its numerics.
    BurnCpu,
}

impl DeviceChoice {
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Gpu => "gpu",
            DeviceChoice::Auto => "auto",
            DeviceChoice::BurnCpu => "burn-cpu",
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "cpu" => DeviceChoice::Cpu,
            "gpu" => DeviceChoice::Gpu,
            "auto" => DeviceChoice::Auto,
            "burn-cpu" => DeviceChoice::BurnCpu,
            other => {
                return Err(format!(
                    "unknown device `{other}` (cpu, gpu, auto, burn-cpu)"
                ))
            }
        })
    }
}
