//! The GPU backend (feature `gpu`): the model as a burn graph on burn-wgpu, with ember's CubeCL
//! kernels for the quantized products and attention; the same graph on burn-ndarray is the
//! portable reference (`--device burn-cpu`).

pub mod ext;
pub mod graph;

use std::sync::OnceLock;

use burn::tensor::Device;
use ember_kernels::gpu::MatmulKernel;

use crate::{Error, Result};

/// What the wgpu adapter is, as wgpu reports it.
#[derive(Clone, Debug)]
pub struct AdapterInfo {
    pub name: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` (a software rasterizer such as Mesa's
    /// lavapipe) or `Other`.
    pub kind: String,
    /// Vulkan, Metal, Dx12, Gl...
    pub api: String,
    pub driver: String,
}

impl AdapterInfo {
    /// A GPU in hardware (not a software implementation running on the CPU).
    pub fn is_hardware(&self) -> bool {
        self.kind != "Cpu"
    }

    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {}, driver {})",
            self.name, self.kind, self.api, self.driver
        )
    }
}

/// The wgpu device, opened once per process (burn's runtime cannot be initialized twice).
fn wgpu_device() -> &'static std::result::Result<(Device, AdapterInfo), String> {
    static DEVICE: OnceLock<std::result::Result<(Device, AdapterInfo), String>> = OnceLock::new();
    DEVICE.get_or_init(|| {
        cache::configure();
        let opened = std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup());
        match opened {
            Ok(Ok((device, setup))) => {
                let info = setup.adapter.get_info();
                Ok((
                    device,
                    AdapterInfo {
                        name: info.name,
                        kind: format!("{:?}", info.device_type),
                        api: format!("{:?}", info.backend),
                        driver: format!("{} {}", info.driver, info.driver_info)
                            .trim()
                            .to_string(),
                    },
                ))
            }
            Ok(Err(err)) => Err(format!("{err}")),
            Err(_) => Err("wgpu panicked while looking for an adapter".into()),
        }
    })
}

/// Open the wgpu device: its handle and what it is.
pub fn open_gpu() -> Result<(Device, AdapterInfo)> {
    wgpu_device().clone().map_err(Error::NoDevice)
}

/// The device's peak memory read bandwidth in bytes/s, from CubeCL's throughput probe.
pub fn read_bandwidth(device: &Device) -> std::result::Result<f64, String> {
    use burn::tensor::{MemoryAccess, ThroughputKey, ThroughputMode};
    let key = ThroughputKey {
        mode: ThroughputMode::memory(MemoryAccess::Read),
    };
    let stats = device.performance_stats(&[key]);
    match stats.first().map(|s| s.value) {
        Some(Ok(v)) => Ok(v.bytes_per_s(&key)),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the device reports no throughput".into()),
    }
}

/// The product layout for an adapter: [`MatmulKernel::Lanes`] on hardware GPUs,
/// [`MatmulKernel::Rows`] on software ones; `EMBER_GPU_MATMUL=lanes|rows` overrides.
pub fn matmul_kernel(hardware: bool) -> Result<MatmulKernel> {
    match std::env::var("EMBER_GPU_MATMUL").as_deref() {
        Ok("lanes") => Ok(MatmulKernel::Lanes),
        Ok("rows") => Ok(MatmulKernel::Rows),
        Ok("") | Err(_) if hardware => Ok(MatmulKernel::Lanes),
        Ok("") | Err(_) => Ok(MatmulKernel::Rows),
        Ok(other) => Err(Error::InvalidArgument(format!(
            "EMBER_GPU_MATMUL={other} (lanes or rows)"
        ))),
    }
}

/// The burn-ndarray device.
#[allow(deprecated)] // burn-flex succeeds it; see `ext`.
pub fn burn_cpu() -> Device {
    Device::ndarray()
}

pub mod cache {
    //! Where CubeCL keeps its persistent caches (autotune results, compiled kernels): the user's
    //! cache directory, `$EMBER_CACHE_DIR` or `$XDG_CACHE_HOME/ember` or `~/.cache/ember`, never a
    //! cargo `target/` (CubeCL's default when run inside a workspace).

    use std::path::PathBuf;

    use cubecl::config::cache::CacheConfig;
    use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

    pub fn dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("EMBER_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(d));
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(d).join("ember"));
        }
        std::env::var_os("HOME")
            .filter(|d| !d.is_empty())
            .map(|h| PathBuf::from(h).join(".cache").join("ember"))
    }

    /// Point CubeCL's environment at [`dir`] before the first device opens.
    pub fn configure() {
        let Some(dir) = dir() else { return };
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        // A `cubecl.toml` that names a place of its own keeps it; only the `target/` default
        // is redirected. `try_set` leaves a configuration the application set first alone.
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if matches!(config.environment.path, CacheConfig::Target) {
            config.environment.path = CacheConfig::Directory(dir.join("cubecl"));
        }
        CubeClRuntimeConfig::try_set(config);
    }
}
