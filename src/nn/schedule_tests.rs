use super::*;

fn schedule(lr: f32, decay: Decay, warmup: usize) -> Schedule {
    Schedule::new(ScheduleConfig { lr, decay, warmup }).unwrap()
}

fn assert_rates(s: &Schedule, expected: &[(usize, f32)]) {
    for &(t, e) in expected {
        let got = s.lr(t);
        assert!(
            (got - e).abs() <= 1e-6 * e.abs().max(1.0),
            "t = {t}: got {got}, expected {e}"
        );
    }
}

#[test]
fn constant_never_changes() {
    assert_rates(&schedule(0.1, Decay::Constant, 0), &[(0, 0.1), (1000, 0.1)]);
}

#[test]
fn linear_decay_stops_at_its_floor() {
    let s = schedule(
        1.0,
        Decay::Linear {
            rate: 0.1,
            floor: 0.25,
        },
        0,
    );
    assert_rates(&s, &[(0, 1.0), (3, 0.7), (7, 0.3), (8, 0.25), (50, 0.25)]);
}

#[test]
fn step_decay_multiplies_by_gamma_at_each_milestone() {
    let s = schedule(
        1.0,
        Decay::Step {
            milestones: vec![2, 5],
            gamma: 0.5,
        },
        0,
    );
    assert_rates(
        &s,
        &[
            (0, 1.0),
            (1, 1.0),
            (2, 0.5),
            (4, 0.5),
            (5, 0.25),
            (99, 0.25),
        ],
    );
}

#[test]
fn cosine_falls_from_the_base_rate_to_the_minimum() {
    let s = schedule(
        1.0,
        Decay::Cosine {
            total: 4,
            min_lr: 0.2,
        },
        0,
    );
    // (1 + cos(π/4))/2 = 0.853553; halfway = 0.6; end and after = min
    assert_rates(
        &s,
        &[
            (0, 1.0),
            (1, 0.2 + 0.8 * 0.853_553),
            (2, 0.6),
            (4, 0.2),
            (9, 0.2),
        ],
    );
}

#[test]
fn warmup_ramps_linearly_into_any_decay() {
    let s = schedule(1.0, Decay::Constant, 3);
    assert_rates(&s, &[(0, 0.25), (1, 0.5), (2, 0.75), (3, 1.0), (10, 1.0)]);
    let s = schedule(
        1.0,
        Decay::Step {
            milestones: vec![1],
            gamma: 0.1,
        },
        1,
    );
    assert_rates(&s, &[(0, 0.5), (1, 0.1)]);
}

fn plateau(patience: usize, mode: PlateauMode) -> Schedule {
    let decay = Decay::Plateau {
        patience,
        mode,
        factor: 0.1,
        threshold: 0.0,
        min_lr: 1e-4,
    };
    schedule(0.1, decay, 0)
}

#[test]
fn plateau_divides_by_ten_after_more_than_patience_epochs_without_improvement() {
    let mut s = plateau(2, PlateauMode::Min);
    // 1.0 best; 0.9 improves; then 0.95, 0.9, 0.91 do not (3 bad epochs > patience 2)
    let reduced: Vec<bool> = [1.0, 0.9, 0.95, 0.9, 0.91]
        .iter()
        .map(|&m| s.observe(m))
        .collect();
    assert_eq!(reduced, [false, false, false, false, true]);
    assert_rates(&s, &[(0, 0.01)]);
    // the count restarts after a reduction; an improvement resets it too
    assert!(!s.observe(0.95) && !s.observe(0.5) && !s.observe(0.6) && !s.observe(0.6));
    assert!(s.observe(f32::NAN), "NaN is never an improvement");
    assert!((s.lr(0) - 0.001).abs() < 1e-9);
    // and the rate never goes below min_lr
    for _ in 0..20 {
        s.observe(1.0);
    }
    assert_rates(&s, &[(0, 1e-4)]);
}

#[test]
fn plateau_in_max_mode_watches_for_increases() {
    let mut s = plateau(0, PlateauMode::Max);
    assert!(!s.observe(0.5) && !s.observe(0.6));
    assert!(
        s.observe(0.55),
        "patience 0: the first non-improving epoch reduces"
    );
    assert_rates(&s, &[(0, 0.01)]);
}

#[test]
fn plateau_threshold_is_relative_to_the_best_value() {
    let decay = Decay::Plateau {
        patience: 0,
        mode: PlateauMode::Min,
        factor: 0.5,
        threshold: 0.1,
        min_lr: 0.0,
    };
    let mut s = schedule(1.0, decay, 0);
    s.observe(-2.0);
    assert!(s.observe(-2.1), "−2.1 is not below −2 − 0.1·2");
    assert!(!s.observe(-2.3), "−2.3 is an improvement");
}

#[test]
fn other_schedules_ignore_observations() {
    let mut s = schedule(
        0.1,
        Decay::Cosine {
            total: 10,
            min_lr: 0.0,
        },
        0,
    );
    assert!((0..30).all(|_| !s.observe(1.0)));
}

#[test]
fn configs_parse_from_toml_with_pytorch_defaults() {
    let c: ScheduleConfig =
        toml::from_str("lr = 0.01\nwarmup = 5\ndecay = { kind = 'plateau', mode = 'max' }")
            .unwrap();
    let expect = Decay::Plateau {
        patience: 10,
        mode: PlateauMode::Max,
        factor: 0.1,
        threshold: 1e-4,
        min_lr: 0.0,
    };
    assert_eq!((c.lr, c.warmup, &c.decay), (0.01, 5, &expect));
    let c: ScheduleConfig =
        toml::from_str("lr = 1\ndecay = { kind = 'step', milestones = [30, 60] }").unwrap();
    assert_eq!(
        c.decay,
        Decay::Step {
            milestones: vec![30, 60],
            gamma: 0.1
        }
    );
    let c: ScheduleConfig = toml::from_str("lr = 0.1").unwrap();
    assert_eq!((c.decay, c.warmup), (Decay::Constant, 0));
}

#[test]
fn unknown_fields_and_kinds_are_rejected() {
    for text in [
        "lr = 0.1\nwarmpu = 3",
        "lr = 0.1\ndecay = { kind = 'cosine', total = 5, min = 0.0 }",
        "lr = 0.1\ndecay = { kind = 'exponential' }",
    ] {
        assert!(
            toml::from_str::<ScheduleConfig>(text).is_err(),
            "accepted: {text}"
        );
    }
}

#[test]
fn invalid_settings_are_errors() {
    let cases = [
        (0.0, Decay::Constant, "zero lr"),
        (f32::NAN, Decay::Constant, "NaN lr"),
        (
            0.1,
            Decay::Linear {
                rate: -1.0,
                floor: 0.0,
            },
            "negative rate",
        ),
        (
            0.1,
            Decay::Linear {
                rate: 0.1,
                floor: 0.2,
            },
            "floor above lr",
        ),
        (
            0.1,
            Decay::Step {
                milestones: vec![5, 5],
                gamma: 0.1,
            },
            "repeated milestone",
        ),
        (
            0.1,
            Decay::Step {
                milestones: vec![5],
                gamma: 0.0,
            },
            "zero gamma",
        ),
        (
            0.1,
            Decay::Cosine {
                total: 0,
                min_lr: 0.0,
            },
            "empty cosine",
        ),
        (
            0.1,
            Decay::Plateau {
                patience: 1,
                mode: PlateauMode::Min,
                factor: 1.0,
                threshold: 0.0,
                min_lr: 0.0,
            },
            "factor 1 never reduces",
        ),
    ];
    for (lr, decay, what) in cases {
        let result = Schedule::new(ScheduleConfig {
            lr,
            decay,
            warmup: 0,
        });
        assert!(result.is_err(), "accepted {what}");
    }
}
