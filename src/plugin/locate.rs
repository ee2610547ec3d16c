//! Where the plugin's own binary lies, so ONNX Runtime can be found beside it.
//!
//! `std::env::current_exe()` names the host (the DAW), not the plugin, so the folder comes from
//! `dladdr` on the address of a function inside this library.

use std::path::PathBuf;

/// The file this code was loaded from (the .clap file, or the .so inside the .vst3 bundle).
pub fn own_binary() -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::ffi::CStr;
        use std::os::unix::ffi::OsStrExt;
        let address = own_binary as *const () as *const libc::c_void;
        // SAFETY: dladdr only reads the loader's tables and fills `info`.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        if unsafe { libc::dladdr(address, &mut info) } == 0 || info.dli_fname.is_null() {
            return None;
        }
        // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
        let name = unsafe { CStr::from_ptr(info.dli_fname) };
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
        // A relative name (a program linked with this code) is relative to the working folder.
        Some(std::fs::canonicalize(&path).unwrap_or(path))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The folder of [`own_binary`].
pub fn own_folder() -> Option<PathBuf> {
    own_binary().and_then(|p| p.parent().map(|d| d.to_path_buf()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_a_file_that_exists() {
        let binary = super::own_binary().expect("dladdr knows this code");
        assert!(binary.is_file(), "{}", binary.display());
    }
}
