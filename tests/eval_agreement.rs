//! `pianoforte eval` agrees with the Python trainer's `evaluate` on the same performances.
//!
//! The same files go both ways: through a CSV (every row in the `validation` split) into
//! `pianoforte eval`, and through `pianoforte dataset` into token files for
//! `python -m pianoforte_train evaluate`. The figures must agree within 1e-5 nats/event (they
//! agree to ~1e-6: the same model, the same controls, float32 logits reduced in float64).
//!
//! Python: `PIANOFORTE_PYTHON`, else the trainer's environment from `tests/python-env.sh`
//! (`~/.cache/pianoforte/venv`), else `~/.cache/pianoforte/venv-probe`. Without one (with numpy,
//! onnx, onnxruntime and torch) the test says so and passes, unless `PIANOFORTE_REQUIRE_PYTHON=1`.

use pianoforte::engine::model::{LoadOptions, Model, ModelSource};
use pianoforte::engine::{self, Engine, Settings};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn python() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let candidates: Vec<PathBuf> = match std::env::var_os("PIANOFORTE_PYTHON") {
        Some(p) => vec![p.into()],
        None => vec![home.join(".cache/pianoforte/venv/bin/python")],
    };
    candidates
        .into_iter()
        .find(|p| Command::new(p).args(["-c", "import numpy, onnx, onnxruntime, torch"]).output().is_ok_and(|o| o.status.success()))
}

fn json(output: std::process::Output, what: &str) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| panic!("{what}: no JSON in\n{stdout}"));
    serde_json::from_str(line).unwrap()
}

/// The two shortest MAESTRO validation performances, when the data is there.
fn maestro_files() -> Vec<PathBuf> {
    let csv = Path::new(ROOT).join("../shared/data/maestro-v2.0.0/maestro-v2.0.0-train-validation.csv");
    let Ok(mut reader) = csv::Reader::from_path(&csv) else {
        return Vec::new();
    };
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (split, file, duration) = (col("split"), col("midi_filename"), col("duration"));
    let mut rows: Vec<(f64, PathBuf)> = reader
        .records()
        .flatten()
        .filter(|r| &r[split] == "validation")
        .map(|r| (r[duration].parse().unwrap_or(f64::MAX), csv.parent().unwrap().join(&r[file])))
        .filter(|(_, p)| p.is_file())
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    rows.into_iter().take(2).map(|(_, p)| p).collect()
}

#[test]
fn rust_and_python_evaluations_agree() {
    let Some(python) = python() else {
        let message = "SKIPPED rust_and_python_evaluations_agree: no Python with numpy, onnx, onnxruntime and torch \
                       (set PIANOFORTE_PYTHON, or create it with tests/python-env.sh)";
        assert!(std::env::var_os("PIANOFORTE_REQUIRE_PYTHON").is_none(), "{message}");
        eprintln!("{message}");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pianoforte-eval-agreement-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Performances: three generated ones (always available) and real ones when present.
    // The model file (PIANOFORTE_TEST_MODEL picks another one).
    let model_path =
        std::env::var_os("PIANOFORTE_TEST_MODEL").map_or_else(|| Path::new(ROOT).join("models/pianoforte-gru.onnx"), PathBuf::from);
    let model = Model::load(&ModelSource::File(model_path.clone()), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(model, Settings { seed: 21, ..Settings::default() }).unwrap();
    let mut files = Vec::new();
    for (k, seconds) in [15.0, 25.0, 40.0].into_iter().enumerate() {
        let generated = engine::generate(&mut engine, &[], seconds).unwrap();
        let path = dir.join(format!("generated-{k}.mid"));
        std::fs::write(&path, generated.midi(true)).unwrap();
        files.push(path);
    }
    files.extend(maestro_files());
    let csv_path = dir.join("files.csv");
    let mut csv = csv::Writer::from_path(&csv_path).unwrap();
    csv.write_record(["canonical_composer", "canonical_title", "split", "midi_filename"]).unwrap();
    for (k, f) in files.iter().enumerate() {
        csv.write_record(["test", &format!("piece {k}"), "validation", f.to_str().unwrap()]).unwrap();
    }
    csv.flush().unwrap();
    drop(csv);

    let bin = env!("CARGO_BIN_EXE_pianoforte");
    let tokens = dir.join("tokens");
    let built = Command::new(bin).arg("dataset").arg(&csv_path).arg("--out").arg(&tokens).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));

    // With the controls of the music, and with every control off (the unconditioned figure).
    for extra in [&[][..], &["--no-control"][..]] {
        let rust = json(
            Command::new(bin)
                .args(["eval", "--json", "--split", "validation", "--model"])
                .arg(&model_path)
                .args(extra)
                .arg(&csv_path)
                .output()
                .unwrap(),
            "pianoforte eval",
        );
        let py = json(
            Command::new(&python)
                .args(["-m", "pianoforte_train", "evaluate", "--json", "--split", "validation", "--threads", "1", "--data"])
                .arg(&tokens)
                .arg(&model_path)
                .args(extra)
                .env("PYTHONPATH", Path::new(ROOT).join("models"))
                .output()
                .unwrap(),
            "python -m pianoforte_train evaluate",
        );
        println!("{extra:?}\nrust:   {rust}\npython: {py}");
        assert_eq!(rust["docs"], py["docs"]);
        assert_eq!(rust["events"], py["events"]);
        assert_eq!((&rust["control"], &rust["grammar"]), (&py["control"], &py["grammar"]));
        let num = |v: &serde_json::Value, key: &str| v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"));
        let nll = (num(&rust, "nll_nats_per_event") - num(&py, "nll_nats_per_event")).abs();
        assert!(nll < 1e-5, "NLL differs by {nll} nats/event");
        assert!((num(&rust, "duration_s") - num(&py, "duration_s")).abs() < 1e-6);
        let bps = (num(&rust, "bits_per_second") - num(&py, "bits_per_second")).abs();
        assert!(bps < 1e-5 * num(&py, "bits_per_second") / num(&py, "nll_nats_per_event") + 1e-9, "bits/s differ by {bps}");
        let accuracy = (num(&rust, "accuracy") - num(&py, "accuracy")).abs();
        assert!(accuracy < 1e-3, "accuracy differs by {accuracy}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
