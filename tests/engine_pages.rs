//! A warmed-up inference pass at batch 1 runs on memory the process already has: its
//! activation buffers come back from the engine's pool (`nn::recycle`) or the
//! allocator's free lists, not as freshly mapped pages. Alone in its own test binary:
//! page faults are counted for the whole process. glibc's behaviour is what the pool's
//! floor is set against, hence Linux with glibc only.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use faceprint::model::arch::{ArchSpec, ResnetSpec};
use faceprint::nn::Tensor;

/// Minor page faults of the whole process so far.
fn minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the whole struct, which outlives the call.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(status, 0, "getrusage");
    // SAFETY: initialised by the successful call above.
    unsafe { usage.assume_init() }.ru_minflt
}

#[test]
fn a_warmed_up_batch_one_residual_pass_maps_no_fresh_pages() {
    // At 56×48 the stages' maps are 336, 168 and 84 KiB at batch 1: the first two above
    // glibc's 128 KiB mmap threshold and under the MiB at which the pool once started
    // keeping buffers, so glibc mapped them afresh in every pass.
    let spec = ArchSpec::Resnet(ResnetSpec::with_input([56, 48]));
    let net = spec.build(3).expect("network");
    let values: Vec<f32> = (0..56 * 48)
        .map(|i| ((i * 37) % 101) as f32 / 101.0)
        .collect();
    let x = Tensor::from_shape_vec(vec![1, 1, 56, 48], values).expect("shape");
    let first = net.infer(&x).expect("pass");
    for _ in 0..3 {
        net.infer(&x).expect("warm-up pass");
    }
    let passes = 8;
    let before = minor_faults();
    for _ in 0..passes {
        let y = net.infer(&x).expect("pass");
        assert_eq!(y, first, "the same input gives the same embedding");
    }
    let faults = minor_faults() - before;
    // With the pool keeping buffers of a MiB and more only, these passes took 256 faults
    // each (2 047 in 8). Now about half the runs take none; a pass whose work rayon's two
    // threads steal from each other can still find a nested call's column matrix or the
    // `gemm` crate's packing buffer cold (0 to 429 in 8 passes over 60 runs of this test
    // on two threads).
    assert!(
        faults <= 1024,
        "{faults} minor page faults in {passes} warmed-up batch-1 passes"
    );
}
