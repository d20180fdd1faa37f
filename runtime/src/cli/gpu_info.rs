//! `ember gpu-info`: the GPU adapter the `gpu` device would use, and its read bandwidth.

use clap::Args;

use crate::CliResult;

#[derive(Args)]
pub struct GpuInfoArgs {
    /// Also measure the adapter's memory read bandwidth (a CubeCL probe; takes seconds).
    #[arg(long)]
    bandwidth: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "gpu")]
pub fn command(a: GpuInfoArgs) -> CliResult {
    let (device, info) = ember::gpu::open_gpu()?;
    let bandwidth = a.bandwidth.then(|| ember::gpu::read_bandwidth(&device));
    if a.json {
        let mut out = serde_json::json!({
            "adapter": info.describe(),
            "name": info.name,
            "kind": info.kind,
            "api": info.api,
            "hardware": info.is_hardware(),
            "cache_dir": ember::gpu::cache::dir(),
        });
        match bandwidth {
            Some(Ok(b)) => out["read_bytes_per_s"] = b.into(),
            Some(Err(e)) => out["bandwidth_error"] = e.into(),
            None => {}
        }
        println!("{out}");
    } else {
        println!("adapter: {}", info.describe());
        if let Some(dir) = ember::gpu::cache::dir() {
            println!(
                "kernel and autotune cache: {}",
                dir.join("cubecl").display()
            );
        }
        match bandwidth {
            Some(Ok(b)) => println!("memory read bandwidth: {:.1} GB/s", b / 1e9),
            Some(Err(e)) => println!("memory read bandwidth: not measured ({e})"),
            None => {}
        }
    }
    Ok(())
}

#[cfg(not(feature = "gpu"))]
pub fn command(_: GpuInfoArgs) -> CliResult {
    Err(ember::Error::NoDevice("ember was built without the `gpu` feature".into()).into())
}
