//! The generator's exponential moving average (`train --ema`) by name: it is saved as a module
//! `generator_ema` beside `generator`, with the same PyTorch names under another prefix
//! (`generator_ema.0.weight`), so that PyTorch loads it into a second copy of the generator.

use crate::nn::ParamSpec;

const G_PREFIX: &str = "generator.";
const EMA_PREFIX: &str = "generator_ema.";

/// The name of the moving average of generator tensor `name`.
pub fn ema_name(name: &str) -> String {
    match name.strip_prefix(G_PREFIX) {
        Some(rest) => format!("{EMA_PREFIX}{rest}"),
        None => name.to_string(),
    }
}

/// The generator tensor whose moving average is named `name`, if it is one.
pub fn averaged_name(name: &str) -> Option<String> {
    name.strip_prefix(EMA_PREFIX)
        .map(|rest| format!("{G_PREFIX}{rest}"))
}

/// The generator's specs under the moving average's names (layouts and shapes as the generator's).
pub fn ema_specs(generator: &[ParamSpec]) -> Vec<ParamSpec> {
    generator
        .iter()
        .map(|s| ParamSpec {
            name: ema_name(&s.name),
            ..s.clone()
        })
        .collect()
}
