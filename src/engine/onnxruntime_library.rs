//! The ONNX Runtime library pianoforte runs on: its version and file name. One definition,
//! shared by the engine (`runtime.rs`) and `cargo xtask` (which includes this file by path,
//! so xtask need not build the whole crate).

/// The `onnxruntime` wheel on PyPI the library is taken from (and the trainer's onnxruntime).
pub const ONNXRUNTIME_VERSION: &str = "1.32.0";

/// The library's file name as the wheel ships it.
pub fn library_file_name() -> String {
    if cfg!(target_os = "windows") {
        "onnxruntime.dll".into()
    } else if cfg!(target_os = "macos") {
        format!("libonnxruntime.{ONNXRUNTIME_VERSION}.dylib")
    } else {
        format!("libonnxruntime.so.{ONNXRUNTIME_VERSION}")
    }
}
