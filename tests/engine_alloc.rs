//! `Engine::step` allocates nothing after warm-up.
//!
//! Its own test binary, because it replaces the global allocator with a counting one. Two
//! counters: Rust allocations (the global allocator: the engine, `ort`'s Rust side), and, on
//! glibc, every C-level `malloc`/`calloc`/`realloc` in the process (ONNX Runtime's C++ side
//! included): this binary interposes those symbols and forwards them to glibc's own entry points.

use pianoforte::engine::control::{Control, KeyControl};
use pianoforte::engine::model::{LoadOptions, Model, ModelSource};
use pianoforte::engine::sampling::Sampling;
use pianoforte::engine::{BeatClock, Engine, Meter, Settings};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static RUST_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static C_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            RUST_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            RUST_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            RUST_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// C-level allocation counting (glibc): `malloc` & co. defined here take precedence over libc's
/// for the whole process, including the dlopen'ed ONNX Runtime.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod c_level {
    use super::{C_ALLOCATIONS, COUNTING};
    use std::ffi::c_void;
    use std::sync::atomic::Ordering;

    unsafe extern "C" {
        fn __libc_malloc(size: usize) -> *mut c_void;
        fn __libc_calloc(count: usize, size: usize) -> *mut c_void;
        fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    }

    fn count() {
        if COUNTING.load(Ordering::Relaxed) {
            C_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
        count();
        unsafe { __libc_malloc(size) }
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn calloc(count_: usize, size: usize) -> *mut c_void {
        count();
        unsafe { __libc_calloc(count_, size) }
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        count();
        unsafe { __libc_realloc(ptr, size) }
    }

    pub const ACTIVE: bool = true;
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod c_level {
    pub const ACTIVE: bool = false;
}

/// Counts (Rust, C) allocations while running `f`.
fn counted(f: impl FnOnce()) -> (usize, usize) {
    RUST_ALLOCATIONS.store(0, Ordering::SeqCst);
    C_ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    (RUST_ALLOCATIONS.load(Ordering::SeqCst), C_ALLOCATIONS.load(Ordering::SeqCst))
}

#[test]
fn step_does_not_allocate_after_warm_up() {
    // PIANOFORTE_TEST_MODEL runs it on another model file (e.g. a format-1 one).
    let source = std::env::var_os("PIANOFORTE_TEST_MODEL").map_or(ModelSource::Embedded, |p| ModelSource::File(p.into()));
    let model = Model::load(&source, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let settings = Settings {
        sampling: Sampling { temperature: 1.5, top_p: Some(0.95), memory: 0.5, tightness: 0.75 },
        control: Control::NotesPerSecond(8.0),
        seed: 3,
        ..Settings::default()
    };
    let mut engine = Engine::new(model, settings).unwrap();
    // Following a beat (format 3 hears it; Tightness pulls towards it).
    engine.set_beat_clock(Some(BeatClock::steady(100.0, Meter::FOUR_FOUR)));
    for _ in 0..200 {
        engine.step().unwrap();
    }
    let mut run = |steps: usize| {
        let mut events = 0;
        let counts = counted(|| {
            for i in 0..steps {
                if i % 500 == 250 {
                    // Changing the control and the sampling on the fly is allocation-free too.
                    engine.set_control(if i % 1000 == 250 { Control::Off } else { Control::NotesPerSecond(4.0) });
                    engine
                        .set_sampling(Sampling {
                            temperature: 1.0 + (i % 3) as f32 * 0.25,
                            top_p: None,
                            memory: (i % 2) as f32,
                            tightness: (i % 2) as f32,
                        })
                        .unwrap();
                    // So is changing the key (format 2 feeds it, with the state features, every step);
                    // Any chooses its key from what it has heard.
                    engine.set_key(match (i / 500) % 3 {
                        0 => KeyControl::Key(14),
                        1 => KeyControl::Any,
                        _ => KeyControl::PitchClasses([1.0; 12]),
                    });
                }
                let step = engine.step().unwrap();
                events += step.event.id() as usize; // keep the loop honest
            }
        });
        assert!(events > 0);
        counts
    };
    let (short, long) = (1000, 2000);
    let (rust_short, c_short) = run(short);
    let (rust, c) = run(long);
    let steps = long;
    println!(
        "{steps} steps: {rust} Rust allocations; {} C-level malloc/calloc/realloc calls ({:.2} per step, ONNX Runtime's own){}",
        c,
        c as f64 / steps as f64,
        if c_level::ACTIVE { "" } else { " [not measured on this platform]" }
    );
    assert_eq!(rust_short, 0, "Engine::step allocated {rust_short} times on the Rust side in {short} steps");
    if c_level::ACTIVE {
        // The C counter sees allocations at all (a Rust Vec goes through glibc's malloc)...
        let (_, seen) = counted(|| drop(std::hint::black_box(vec![0u8; 4096])));
        assert!(seen >= 1, "the C-level counter missed a malloc");
        // ...and ONNX Runtime's own calls are a fixed cost per step, not growing with the run.
        let (per_short, per_long) = (c_short as f64 / short as f64, c as f64 / long as f64);
        assert!((per_short - per_long).abs() < 1.0, "C allocations per step grew: {per_short:.2} then {per_long:.2}");
    }
    assert_eq!(rust, 0, "Engine::step allocated {rust} times on the Rust side in {steps} steps");
}
