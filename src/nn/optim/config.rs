//! The optimiser as configured in TOML or on the command line.

use serde::{Deserialize, Serialize};

use super::{Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use crate::nn::Result;

/// Which optimiser to build, tagged by `kind`:
///
/// ```toml
/// [optimizer]
/// kind = "sgd"            # or "adagrad", "adam"
/// momentum = 0.9
/// nesterov = true
/// weight_decay = { l2 = 5e-4 }    # { decoupled = 1e-2 } with kind = "adam" is AdamW
/// max_norm = 3.0
/// ```
///
/// Omitted fields take PyTorch's defaults. The learning rate is not here: it comes
/// from the schedule (`nn::schedule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    Sgd(SgdConfig),
    Adagrad(AdagradConfig),
    Adam(AdamConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

impl OptimizerConfig {
    /// The optimiser, or an error naming the first invalid hyper-parameter.
    pub fn build(&self) -> Result<Box<dyn Optimizer>> {
        Ok(match self {
            OptimizerConfig::Sgd(c) => Box::new(Sgd::new(c)?),
            OptimizerConfig::Adagrad(c) => Box::new(Adagrad::new(c)?),
            OptimizerConfig::Adam(c) => Box::new(Adam::new(c)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::optim::WeightDecay;

    #[test]
    fn sgd_with_decay_and_max_norm_parses_from_toml() {
        let cfg: OptimizerConfig = toml::from_str(
            "kind = 'sgd'\nmomentum = 0.9\nnesterov = true\n\
             weight_decay = { l2 = 5e-4 }\nmax_norm = 3.0\n",
        )
        .unwrap();
        let expect = SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: Some(WeightDecay::L2(5e-4)),
            max_norm: Some(3.0),
        };
        assert_eq!(cfg, OptimizerConfig::Sgd(expect));
        assert!(cfg.build().is_ok());
    }

    #[test]
    fn adam_fields_default_to_pytorch_values() {
        let cfg: OptimizerConfig =
            toml::from_str("kind = 'adam'\nweight_decay = { decoupled = 0.01 }").unwrap();
        let OptimizerConfig::Adam(adam) = cfg else {
            panic!("expected adam, got {cfg:?}");
        };
        assert_eq!((adam.beta1, adam.beta2, adam.eps), (0.9, 0.999, 1e-8));
        assert_eq!(adam.weight_decay, Some(WeightDecay::Decoupled(0.01)));
    }

    #[test]
    fn typos_and_unknown_kinds_are_rejected() {
        assert!(toml::from_str::<OptimizerConfig>("kind = 'sgd'\nmomentun = 0.9").is_err());
        assert!(toml::from_str::<OptimizerConfig>("kind = 'rmsprop'").is_err());
        let bad: OptimizerConfig = toml::from_str("kind = 'sgd'\nmomentum = 1.5").unwrap();
        assert!(bad.build().is_err());
    }
}
