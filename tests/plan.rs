//! `ember plan`: the predictions that can be checked exactly (buffer sizes, file sizes) or against
//! a run on this machine (resident memory), and the CLI's contract. No timing is asserted: speed
//! predictions are validated by bench/plan_validate.sh.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use ember::plan::{self, profiles, Ftype, PlanParams, Quant, Shape};
use ember::{DeviceChoice, LoadParams, Model, Session, SessionParams};

const QWEN_05B: &str = "models/qwen2.5-coder-0.5b-instruct.gguf";
const QWEN_15B_Q4_K_M: &str = "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

fn load(path: &Path) -> Arc<Model> {
    Arc::new(Model::load(path, &LoadParams::default()).unwrap())
}

fn ember(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .output()
        .expect("run the ember binary")
}

fn pi5() -> plan::Target {
    profiles::find("pi5").unwrap().target()
}

#[test]
fn plan_state_sizes_equal_an_allocated_sessions_state() {
    for rel in [common::SMOLLM2, QWEN_05B] {
        let path = if rel == common::SMOLLM2 {
            common::asset(rel)
        } else {
            Some(common::root().join(rel)).filter(|p| p.exists())
        };
        let Some(path) = path else { continue };
        let model = load(&path);
        let shape = Shape::of(&model);
        for (n_ctx, n_batch) in [(64, 256), (512, 256), (2048, 512), (4096, 32)] {
            let params = PlanParams {
                n_ctx,
                n_batch,
                n_threads: 2,
                n_prompt: 0,
                n_gen: 1,
            };
            let e = plan::estimate(&shape, Quant::File, &pi5(), &params).unwrap();
            let session = Session::new(
                model.clone(),
                &SessionParams {
                    n_ctx,
                    n_batch,
                    n_threads: 2,
                    logits_all: false,
                    logits_tail: 1,
                    device: DeviceChoice::Cpu,
                },
            )
            .unwrap();
            assert_eq!(
                (e.kv_bytes + e.scratch_bytes) as usize,
                session.state_bytes(),
                "{rel} at context {n_ctx}, batch {n_batch}"
            );
        }
    }
}

#[test]
fn resident_prediction_matches_the_peak_rss_of_a_bench_run() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let path = path.to_str().unwrap();
    // A fresh process: 256 prompt tokens fill the 256-token context (every KV page written),
    // 16 decode steps; the weights are all read.
    let out = ember(&[
        "bench",
        "-m",
        path,
        "-p",
        "256",
        "-n",
        "16",
        "-r",
        "1",
        "-t",
        "2",
        "-b",
        "256",
        "--ttft-prompt",
        "0",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let measured = report["models"][0]["peak_rss_bytes"].as_u64().unwrap() as f64;
    let shape = Shape::of(&load(Path::new(path)));
    let params = PlanParams {
        n_ctx: 256,
        n_batch: 256,
        n_threads: 2,
        n_prompt: 256,
        n_gen: 0,
    };
    let e = plan::estimate(&shape, Quant::File, &pi5(), &params).unwrap();
    let ratio = e.resident_bytes as f64 / measured;
    eprintln!(
        "predicted {} B, measured peak RSS {measured} B: ratio {ratio:.3}",
        e.resident_bytes
    );
    assert!((0.85..=1.15).contains(&ratio), "ratio {ratio:.3}");
}

#[test]
fn own_quantization_predicted_from_shapes_equals_the_file() {
    let mut checked = 0;
    for rel in [common::SMOLLM2, QWEN_05B, QWEN_15B_Q4_K_M] {
        let path = common::root().join(rel);
        if !path.exists() {
            eprintln!("SKIP: {rel} missing");
            continue;
        }
        let model = load(&path);
        let shape = Shape::of(&model);
        let ftype = shape
            .file_type
            .and_then(Ftype::from_id)
            .unwrap_or_else(|| panic!("{rel}: file type {:?}", shape.file_type));
        let predicted = ftype.types(&shape.tensors, shape.config.n_layer);
        for (t, ty) in shape.tensors.iter().zip(&predicted) {
            assert_eq!(t.ty, *ty, "{rel} {} as {}", t.name, ftype.name());
        }
        let params = PlanParams {
            n_ctx: 512,
            n_prompt: 128,
            ..Default::default()
        };
        let file = plan::estimate(&shape, Quant::File, &pi5(), &params).unwrap();
        let same = plan::estimate(&shape, Quant::Predicted(ftype), &pi5(), &params).unwrap();
        assert_eq!(file.file_bytes, model.file_size(), "{rel}");
        assert_eq!(same.file_bytes, file.file_bytes, "{rel}");
        assert_eq!(same.weights_bytes, file.weights_bytes, "{rel}");
        assert!(shape.other_bytes < file.file_bytes / 10, "{rel}: header");
        checked += 1;
    }
    assert!(checked > 0 || std::env::var_os("CI").is_none());
}

#[test]
fn more_bits_and_more_context_cost_more() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let shape = Shape::of(&load(&path));
    // A profile with SIMD kernels, where decode is bound by the bytes read.
    let vm = profiles::find("x86-vm-2c").unwrap().target();
    let at = |q, n_ctx| {
        let params = PlanParams {
            n_ctx,
            ..Default::default()
        };
        plan::estimate(&shape, q, &vm, &params).unwrap()
    };
    let q8 = at(Quant::Predicted(Ftype::Q8_0), 1024);
    let q4km = at(Quant::Predicted(Ftype::Q4_K_M), 1024);
    let q4 = at(Quant::Predicted(Ftype::Q4_0), 1024);
    assert!(q8.file_bytes > q4km.file_bytes, "q8_0 > q4_k_m");
    assert!(q4km.file_bytes > q4.file_bytes, "q4_k_m > q4_0");
    assert!(q8.weights_bytes > q4km.weights_bytes && q4km.weights_bytes > q4.weights_bytes);
    assert!(q8.decode_tokens_per_s < q4.decode_tokens_per_s);
    let long = at(Quant::File, 8192);
    let short = at(Quant::File, 1024);
    assert!(long.kv_bytes == 8 * short.kv_bytes && long.resident_bytes > short.resident_bytes);
    assert_eq!(long.weights_bytes, short.weights_bytes);
}

#[test]
fn cli_json_row_has_the_fields() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let out = ember(&[
        "plan",
        "-m",
        path.to_str().unwrap(),
        "--device",
        "pi5",
        "-c",
        "2048",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "resident_bytes",
        "weights_bytes",
        "kv_bytes",
        "scratch_bytes",
        "decode_tokens_per_s",
        "prefill_tokens_per_s",
        "ttft_ms",
        "fits",
        "margin_bytes",
    ] {
        assert!(!row[key].is_null(), "{key} missing in {row}");
    }
    assert_eq!(row["device"], "pi5");
    assert_eq!(row["quant"], "q4_1");
    assert_eq!(row["n_ctx"], 2048);
    assert_eq!(row["fits"], true);
    assert!(row["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn cli_quant_list_adds_one_row_each() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let path = path.to_str().unwrap();
    let out = ember(&[
        "plan",
        "-m",
        path,
        "--device",
        "pi5",
        "--quant",
        "q4_0,q4_k_m,q8_0",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let quants: Vec<&str> = rows.iter().map(|r| r["quant"].as_str().unwrap()).collect();
    assert_eq!(quants, ["q4_1", "q4_0", "q4_k_m", "q8_0"]);
    assert_eq!(rows[0]["predicted"], false);
    assert!(rows[1..].iter().all(|r| r["predicted"] == true));
    let bad = ember(&["plan", "-m", path, "--quant", "q3_k_xl"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("q3_k_xl"));
}

#[test]
fn cli_unknown_device_is_an_error_that_lists_the_profiles() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let out = ember(&[
        "plan",
        "-m",
        path.to_str().unwrap(),
        "--device",
        "nokia3310",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown device profile `nokia3310`"), "{err}");
    for p in &profiles::PROFILES {
        assert!(err.contains(p.name), "{} not listed: {err}", p.name);
    }
}

#[test]
fn cli_device_all_lists_every_profile() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let out = ember(&[
        "plan",
        "-m",
        path.to_str().unwrap(),
        "--device",
        "all",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let devices: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["device"].to_string())
        .collect();
    let names: Vec<String> = profiles::PROFILES
        .iter()
        .map(|p| format!("\"{}\"", p.name))
        .collect();
    assert_eq!(devices, names);
    // The table prints one row per profile too.
    let table = ember(&["plan", "-m", path.to_str().unwrap(), "--device", "all"]);
    let text = String::from_utf8(table.stdout).unwrap();
    for p in &profiles::PROFILES {
        assert!(text.contains(&format!("| {:<14} |", p.name)), "{text}");
    }
}

#[test]
fn cli_bad_model_file_is_the_loaders_error() {
    let missing = ember(&[
        "plan",
        "-m",
        "/nonexistent/ember/model.gguf",
        "--device",
        "pi5",
    ]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent/ember/model.gguf"), "{err}");

    let dir = std::env::temp_dir().join(format!("ember-plan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\x00\x00\x00 not a model").unwrap();
    let out = ember(&["plan", "-m", junk.to_str().unwrap(), "--device", "pi5"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid GGUF"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `--device this` (by default): the rates the cost model uses on this machine are the ones its kernels
/// were just timed at, for every type the probe covers, not the calibration table's.
#[test]
fn measured_kernels_replace_the_calibration_rates_on_this_machine() {
    let table = plan::this_machine::target().unwrap();
    assert!(table.measured.is_none());
    let timed = plan::this_machine::with_measured_kernels(table.clone()).unwrap();
    let probed = timed.measured.as_ref().unwrap();
    for ty in plan::kernel_probe::TYPES {
        let r = timed.kernel_rate(ty);
        let p = probed.kernels.iter().find(|(t, _)| *t == ty).unwrap().1;
        assert_eq!(r, p, "{ty}");
        assert!(
            r.decode_bytes_per_cycle > 0.0 && r.prefill_ops_per_cycle > 0.0,
            "{ty}"
        );
    }
    assert_eq!(
        timed.attention_flops_per_cycle(),
        probed.attention_flops_per_cycle
    );
    assert!(timed.description.contains("kernels timed here"));
}

/// `ember plan` on this machine times its kernels unless told to use the calibration table.
#[test]
fn plan_on_this_machine_times_the_kernels_by_default() {
    let Some(path) = common::asset(common::SMOLLM2) else {
        return;
    };
    let path = path.to_str().unwrap();
    let timed = ember(&["plan", "-m", path]);
    let table = ember(&["plan", "-m", path, "--calibration-rates"]);
    assert!(timed.status.success() && table.status.success());
    let (timed, table) = (
        String::from_utf8_lossy(&timed.stdout),
        String::from_utf8_lossy(&table.stdout),
    );
    assert!(timed.contains("kernels timed here"), "{timed}");
    assert!(!table.contains("kernels timed here"), "{table}");
}
