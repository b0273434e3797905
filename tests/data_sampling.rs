//! Augmentation determinism, P×K sampler balance and identity-disjoint splits.

use std::collections::{BTreeMap, BTreeSet};

use faceprint::data::{Augmentation, PkSampler, SplitSize, split_identities};
use ndarray::Array2;

fn ramp() -> Array2<f32> {
    Array2::from_shape_fn((8, 6), |(y, x)| (y * 6 + x) as f32 / 48.0)
}

#[test]
fn augmentation_is_deterministic_per_seed() {
    let image = ramp();
    let aug = Augmentation::default();
    let a = aug.apply_batch(&[&image, &image, &image], 7);
    let b = aug.apply_batch(&[&image, &image, &image], 7);
    let c = aug.apply_batch(&[&image, &image, &image], 8);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a[0], a[1], "images of a batch get their own draws");
    for out in &a {
        assert_eq!(out.dim(), (8, 6));
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn no_augmentation_is_the_identity_and_flip_alone_mirrors() {
    let image = ramp();
    let out = Augmentation::none().apply_batch(&[&image; 4], 1);
    assert!(out.iter().all(|o| *o == image));
    let flip = Augmentation {
        flip: true,
        ..Augmentation::none()
    };
    let mirrored = Array2::from_shape_fn((8, 6), |(y, x)| image[[y, 5 - x]]);
    let outs = flip.apply_batch(&[&image; 32], 3);
    assert!(outs.iter().all(|o| *o == image || *o == mirrored));
    assert!(
        outs.contains(&image) && outs.contains(&mirrored),
        "both outcomes occur"
    );
}
#[test]
fn shadows_only_darken_and_quantise_to_eight_bits() {
    let image = Array2::from_elem((56, 48), 0.6f32);
    let shadow = Augmentation {
        shadow: 1.0,
        ..Augmentation::none()
    };
    let outs = shadow.apply_batch(&[&image; 16], 5);
    for out in &outs {
        assert!(out.iter().all(|&v| v <= 0.6 + 0.5 / 255.0), "brightened");
        assert!(
            out.iter()
                .all(|&v| ((v * 255.0).round() - v * 255.0).abs() < 1e-3),
            "not on the 8-bit grid"
        );
    }
    // Each shadow has a dark side and a lit side, and no two fall alike.
    let darkest: Vec<f32> = outs
        .iter()
        .map(|o| o.fold(1.0f32, |a, &b| a.min(b)))
        .collect();
    assert!(
        darkest.iter().filter(|&&d| d < 0.45).count() >= 8,
        "{darkest:?}"
    );
    assert!(outs.iter().all(|o| o.fold(0.0f32, |a, &b| a.max(b)) > 0.55));
    assert_ne!(outs[0], outs[1]);
    // Probability 0 leaves images alone.
    assert!(
        Augmentation::none()
            .apply_batch(&[&image; 4], 5)
            .iter()
            .all(|o| *o == image)
    );
}

#[test]
fn pk_batches_hold_p_distinct_identities_with_k_images_each() {
    // 6 identities of 5, 4, 7, 2, 5, 6 images.
    let sizes = [5, 4, 7, 2, 5, 6];
    let labels: Vec<usize> = sizes
        .iter()
        .enumerate()
        .flat_map(|(l, &n)| vec![l; n])
        .collect();
    let sampler = PkSampler::new(&labels, 3, 4, 11).expect("sampler");
    assert_eq!(sampler.batches_per_epoch(), 29usize.div_ceil(12));
    for epoch in 0..20 {
        let mut identity_uses = BTreeMap::new();
        for batch in sampler.epoch(epoch) {
            assert_eq!(batch.len(), 12);
            let ids: Vec<usize> = batch.chunks(4).map(|c| labels[c[0]]).collect();
            for (chunk, id) in batch.chunks(4).zip(&ids) {
                assert!(
                    chunk.iter().all(|&i| labels[i] == *id),
                    "identity-major order"
                );
                let distinct: BTreeSet<_> = chunk.iter().collect();
                if sizes[*id] >= 4 {
                    assert_eq!(distinct.len(), 4, "repeats despite {} images", sizes[*id]);
                }
            }
            assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 3);
            for id in ids {
                *identity_uses.entry(id).or_insert(0usize) += 1;
            }
        }
        // 3 batches × 3 = 9 uses of 6 identities: one full shuffled round plus 3.
        let min = identity_uses.values().min().copied().unwrap_or(0);
        let max = identity_uses.values().max().copied().unwrap_or(0);
        assert!(
            identity_uses.len() == 6 && max - min <= 1,
            "epoch {epoch}: {identity_uses:?}"
        );
    }
}

#[test]
fn pk_epochs_are_seeded_and_use_images_evenly() {
    let labels: Vec<usize> = (0..40).map(|i| i / 5).collect();
    let sampler = PkSampler::new(&labels, 4, 2, 5).expect("sampler");
    assert_eq!(sampler.epoch(3), sampler.epoch(3));
    assert_ne!(sampler.epoch(3), sampler.epoch(4));
    let other = PkSampler::new(&labels, 4, 2, 6).expect("sampler");
    assert_ne!(sampler.epoch(3), other.epoch(3));
    let mut uses = vec![0usize; 40];
    for batch in sampler.epoch(0) {
        for i in batch {
            uses[i] += 1;
        }
    }
    for identity in uses.chunks(5) {
        let (min, max) = (identity.iter().min(), identity.iter().max());
        assert!(
            max.zip(min).is_some_and(|(a, b)| a - b <= 1),
            "{identity:?}"
        );
    }
}

#[test]
fn pk_sampler_rejects_more_identities_per_batch_than_exist() {
    let labels = [0, 0, 1, 1];
    let err = PkSampler::new(&labels, 3, 2, 0).expect_err("P > identities");
    assert!(err.to_string().contains("only 2 identities"), "{err}");
}

#[test]
fn identity_splits_are_disjoint_complete_and_seeded() {
    let (train, val) = split_identities(30, SplitSize::Fraction(0.2), 42).expect("split");
    assert_eq!((train.len(), val.len()), (24, 6));
    let t: BTreeSet<_> = train.iter().collect();
    assert!(val.iter().all(|v| !t.contains(v)), "overlap");
    let all: BTreeSet<_> = train.iter().chain(&val).copied().collect();
    assert_eq!(all, (0..30).collect());
    assert_eq!(
        split_identities(30, SplitSize::Fraction(0.2), 42)
            .expect("split")
            .1,
        val
    );
    assert_ne!(
        split_identities(30, SplitSize::Fraction(0.2), 43)
            .expect("split")
            .1,
        val
    );
    assert_eq!(
        split_identities(30, SplitSize::Count(7), 1)
            .expect("split")
            .1
            .len(),
        7
    );
    for bad in [
        SplitSize::Count(0),
        SplitSize::Count(30),
        SplitSize::Fraction(1.5),
    ] {
        assert!(split_identities(30, bad, 1).is_err(), "{bad:?}");
    }
}
