//! Flush-to-zero while rendering: denormal floats are up to 100x slower on x86, and a decaying
//! mix produces them. The voices already end above denormal range; this guards the rest (sums,
//! interpolation) and restores the caller's mode afterwards.

/// Sets flush-to-zero (and denormals-are-zero on x86) until dropped.
pub struct FlushToZero {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    saved: usize,
}

#[cfg(target_arch = "x86_64")]
impl FlushToZero {
    pub fn new() -> FlushToZero {
        // MXCSR bit 15 is FTZ, bit 6 DAZ.
        let mut saved = 0u32;
        // SAFETY: stmxcsr/ldmxcsr read and write a 32-bit value at a valid address; changing the
        // rounding of denormals has no memory-safety effect.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack, preserves_flags));
            let set = saved | 0x8040;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &set, options(nostack, preserves_flags));
        }
        FlushToZero { saved: saved as usize }
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for FlushToZero {
    fn drop(&mut self) {
        let saved = self.saved as u32;
        // SAFETY: as above; restores the value read in `new`.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &saved, options(nostack, preserves_flags)) };
    }
}

#[cfg(target_arch = "aarch64")]
impl FlushToZero {
    pub fn new() -> FlushToZero {
        // FPCR bit 24 is FZ.
        let saved: usize;
        // SAFETY: reading and writing FPCR only changes floating-point behaviour.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) saved, options(nomem, nostack, preserves_flags));
            std::arch::asm!("msr fpcr, {}", in(reg) saved | 1 << 24, options(nomem, nostack, preserves_flags));
        }
        FlushToZero { saved }
    }
}

#[cfg(target_arch = "aarch64")]
impl Drop for FlushToZero {
    fn drop(&mut self) {
        // SAFETY: restores the value read in `new`.
        unsafe { std::arch::asm!("msr fpcr, {}", in(reg) self.saved, options(nomem, nostack, preserves_flags)) };
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
impl FlushToZero {
    pub fn new() -> FlushToZero {
        FlushToZero {}
    }
}

/// Zero for denormals (and anything below -600 dB): the last line, on the output itself.
#[inline]
pub fn flush(x: f32) -> f32 {
    if x.abs() < 1e-30 { 0.0 } else { x }
}
