//! The configuration file: every section parses, round-trips through JSON (checkpoints)
//! and TOML, keeps the keys it records, and refuses unknown keys.

use super::*;
use crate::model::arch::HiddenActivation;
use crate::nn::loss::Mining;

/// Every section, each with some values that are not the defaults.
const FULL: &str = r#"
data = "faces/train"
output = "out/model.safetensors"
run_dir = "runs/full"
epochs = 12
seed = 7
threads = 2
val_fraction = 0.25
selection = "last"
flip_average = false
detect = true
detect_pick = "nearest_centre"
singletons = true
clip_grad_norm = 5.0

[detector]
min_face_size = 24
min_embed_size = 40

[batch]
p = 8
k = 3

[preprocessing]
height = 28
width = 24
normalisation = "tan-triggs"
pca_components = 64
whitening_eps = 0.05
tan_triggs = { sigma0 = 0.5, tau = 8.0 }

[augmentation]
enabled = false
flip = false
max_shift = 3
shadow = 0.25
brightness = 0.2
contrast = 0.3

[arch]
type = "mlp"
hidden = [256, 128]
activation = { maxout = { k = 3 } }
batch_norm = false
dropout = 0.1
embedding_dim = 64

[loss]
kind = "triplet"
margin = 0.3
mining = "semi_hard"
distance = "squared"
soft = true

[lbp]
weight = 0.3
pca = 150
dim = 80
scales = [{ radius = 1.0, cell = 8, resize = 1.0 }]

[optimizer]
kind = "sgd"
momentum = 0.8
nesterov = true

[schedule]
lr = 0.01
warmup = 1
decay = { kind = "step", milestones = [6, 9], gamma = 0.1 }
"#;

fn full() -> TrainConfig {
    toml::from_str(FULL).unwrap()
}

#[test]
fn a_file_with_every_section_sets_each_option() {
    let cfg = full();
    cfg.validate().unwrap();
    assert_eq!((cfg.epochs, cfg.seed, cfg.threads), (12, 7, Some(2)));
    assert_eq!((cfg.selection, cfg.singletons), (Selection::Last, true));
    assert_eq!(
        (cfg.detector.min_face_size, cfg.detector.min_embed_size),
        (24, 40)
    );
    assert_eq!((cfg.batch.p, cfg.batch.k), (8, 3));
    let pre = &cfg.preprocessing;
    assert_eq!(
        (pre.height, pre.width, pre.kind),
        (28, 24, NormalisationKind::TanTriggs)
    );
    assert_eq!((pre.pca_components, pre.whitening_eps), (64, 0.05));
    let tt = pre.tan_triggs;
    assert_eq!(
        (tt.gamma, tt.sigma0, tt.tau),
        (0.2, 0.5, 8.0),
        "paper gamma kept"
    );
    assert_eq!(cfg.augmentation.augmentation(), None);
    assert_eq!(
        cfg.augmentation.settings,
        Augmentation {
            flip: false,
            max_shift: 3,
            shadow: 0.25,
            brightness: 0.2,
            contrast: 0.3,
        }
    );
    assert_eq!(
        cfg.arch,
        ArchSpec::Mlp {
            input: [56, 48],
            hidden: vec![256, 128],
            activation: HiddenActivation::Maxout { k: 3 },
            batch_norm: false,
            dropout: 0.1,
            embedding_dim: 64,
        }
    );
    let LossConfig::Triplet(t) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert_eq!((t.margin, t.mining, t.soft), (0.3, Mining::SemiHard, true));
    let lbp = cfg.lbp.as_ref().unwrap();
    assert_eq!(
        (lbp.weight, lbp.pca, lbp.dim, lbp.scales.len()),
        (0.3, 150, 80, 1)
    );
    assert!(matches!(cfg.optimizer, OptimizerConfig::Sgd(_)));
    assert_eq!(cfg.clip_grad_norm, Some(5.0));
}

#[test]
fn a_full_configuration_round_trips_through_json_and_toml() {
    let cfg = full();
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), cfg);
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(toml::from_str::<TrainConfig>(&text).unwrap(), cfg, "{text}");
    let defaults = TrainConfig::default();
    let text = toml::to_string(&defaults).unwrap();
    assert_eq!(
        toml::from_str::<TrainConfig>(&text).unwrap(),
        defaults,
        "{text}"
    );
    assert_eq!(toml::from_str::<TrainConfig>("").unwrap(), defaults);
}

#[test]
fn the_recorded_configuration_keeps_the_file_s_keys() {
    let json = serde_json::to_value(full()).unwrap();
    let keys = |section: &str| -> Vec<String> {
        let serde_json::Value::Object(map) = &json[section] else {
            panic!("{section}: {json}")
        };
        map.keys().cloned().collect()
    };
    let preprocessing = [
        "height",
        "normalisation",
        "pca_components",
        "tan_triggs",
        "whitening_eps",
        "width",
    ];
    assert_eq!(keys("preprocessing"), preprocessing);
    let augmentation = [
        "brightness",
        "contrast",
        "enabled",
        "flip",
        "max_shift",
        "shadow",
    ];
    assert_eq!(keys("augmentation"), augmentation);
    assert_eq!(json["preprocessing"]["normalisation"], "tan-triggs");
    assert_eq!(json["augmentation"]["enabled"], false);
    assert_eq!(json["arch"]["type"], "mlp");
    assert_eq!(json["arch"]["input"], serde_json::json!([56, 48]));
}

#[test]
fn unknown_keys_are_refused_in_every_section() {
    for bad in [
        "epochz = 3",
        "[batch]\nq = 2",
        "[preprocessing]\nkind = 'pca'",
        "[preprocessing]\nhieght = 28",
        "[preprocessing]\ntan_triggs = { sigma2 = 1.0 }",
        "[augmentation]\nenable = false",
        "[augmentation]\nshadows = 0.5",
        "[arch]\nkind = 'cnn'",
        "[loss]\nkind = 'triplet'\nmargn = 0.3",
        "[lbp]\nweigth = 0.3",
        "[schedule]\nlr = 0.01\nwarm_up = 1",
    ] {
        assert!(
            toml::from_str::<TrainConfig>(bad).is_err(),
            "accepted {bad:?}"
        );
    }
}

#[test]
fn the_module_documentation_s_example_parses() {
    let text = r#"
        data = "faces/train"
        output = "model.safetensors"
        run_dir = "runs/cnn-triplet"
        epochs = 30
        seed = 42

        [preprocessing]
        height = 56
        width = 48
        normalisation = "per-image"

        [augmentation]
        enabled = true
        max_shift = 2

        [arch]
        type = "cnn"

        [loss]
        kind = "triplet"
        margin = 0.2
        mining = "batch_hard"

        [optimizer]
        kind = "adam"

        [schedule]
        lr = 0.001
    "#;
    let cfg: TrainConfig = toml::from_str(text).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.arch, ArchSpec::reference_cnn());
    assert_eq!(cfg.loss.name(), "triplet");
}

#[test]
fn each_loss_is_named_as_on_the_command_line() {
    let names: Vec<&str> = [
        LossConfig::Triplet(TripletConfig::default()),
        LossConfig::Contrastive(ContrastiveConfig::default()),
        LossConfig::default(),
    ]
    .iter()
    .map(LossConfig::name)
    .collect();
    assert_eq!(names, ["triplet", "contrastive", "softmax"]);
}
