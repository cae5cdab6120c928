//! The activations, declared once. Each row of the table below gives an activation's mode code,
//! what its backward keeps from the forward, an example value (for the tests), and its function
//! and derivative twice: in Rust (the CPU reference) and in WGSL (spliced into [`WGSL`], which
//! the runtime prepends to every shader). The enum, [`Activation::ALL`] and the shaders' switch
//! all come from this one table; adding an activation is one row.

use crate::error::{Error, Result};

/// What an activation's backward needs from its forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// The derivative is a function of the output y: fused forward kernels (matmul and
    /// batch-norm epilogues) need not keep their input.
    Output,
    /// The derivative needs the input x: run the layer without the activation, keep its output
    /// x, and apply the activation with `activation_forward` / `activation_backward`.
    Input,
}

// Match pattern of a variant with or without its parameter.
macro_rules! variant_pattern {
    ($name:ident) => {
        Activation::$name
    };
    ($name:ident $param:ty) => {
        Activation::$name(_)
    };
}

// Example value of a variant (its parameter set to the table's example).
macro_rules! variant_example {
    ($name:ident) => {
        Activation::$name
    };
    ($name:ident $example:literal) => {
        Activation::$name($example)
    };
}

macro_rules! activations {
    ($(
        $(#[$doc:meta])*
        $name:ident $(($param:ty = $example:literal))? = $code:literal, saves $saved:ident,
        rust: $f:expr, $df:expr,
        wgsl: $wf:literal, $wdf:literal;
    )*) => {
        /// Activation applied elementwise. In WGSL, `activate(v, code, alpha)` and
        /// `derivative(s, code, alpha)` switch on [`Activation::code`] (a pipeline constant, so
        /// the switch folds away); `s` is what [`Activation::saves`] names.
        ///
        /// ```
        /// use wgsl_gan::activation::{Activation, Saved};
        ///
        /// let leaky = Activation::LeakyRelu(0.2);
        /// assert_eq!(leaky.apply(-1.0), -0.2);
        /// assert_eq!(leaky.derivative(leaky.apply(-1.0)), 0.2); // from the output
        /// assert_eq!(Activation::Silu.saves(), Saved::Input); // its derivative needs x
        /// assert!(Activation::ALL.contains(&Activation::Sigmoid));
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Activation {
            $($(#[$doc])* $name $(($param))?,)*
        }

        impl Activation {
            /// Every activation once, parameters at an example value: the test lists.
            pub const ALL: &[Activation] = &[$(variant_example!($name $($example)?),)*];

            /// The mode code the shaders switch on.
            pub fn code(self) -> u32 {
                match self {
                    $(variant_pattern!($name $($param)?) => $code,)*
                }
            }

            /// What the backward needs from the forward.
            pub fn saves(self) -> Saved {
                match self {
                    $(variant_pattern!($name $($param)?) => Saved::$saved,)*
                }
            }

            /// f(v), the CPU reference of the shaders' `activate`.
            pub fn apply(self, v: f32) -> f32 {
                let alpha = self.alpha();
                match self {
                    $(variant_pattern!($name $($param)?) => {
                        let f: fn(f32, f32) -> f32 = $f;
                        f(v, alpha)
                    })*
                }
            }

            /// f' as a function of `saved`: the forward's output y or its input x, as
            /// [`Activation::saves`] says. The CPU reference of the shaders' `derivative`.
            pub fn derivative(self, saved: f32) -> f32 {
                let alpha = self.alpha();
                match self {
                    $(variant_pattern!($name $($param)?) => {
                        let df: fn(f32, f32) -> f32 = $df;
                        df(saved, alpha)
                    })*
                }
            }
        }

        /// `activate` and `derivative` (and their four-value forms) in WGSL, generated from the
        /// table; prepended to every shader with shaders/common.wgsl.
        pub const WGSL: &str = concat!(
            "// Generated from the activation table in src/activation.rs.\n",
            "fn activate(v: f32, act: u32, alpha: f32) -> f32 {\n    switch act {\n",
            $("        case ", $code, "u: { return ", $wf, "; }\n",)*
            "        default: { return v; }\n    }\n}\n\n",
            "// s is the forward's output y, or its input x where the activation saves its input.\n",
            "fn derivative(s: f32, act: u32, alpha: f32) -> f32 {\n    switch act {\n",
            $("        case ", $code, "u: { return ", $wdf, "; }\n",)*
            "        default: { return 1.0; }\n    }\n}\n\n",
            "// Both for four values.\n",
            "fn activate4(v: vec4<f32>, act: u32, alpha: f32) -> vec4<f32> {\n",
            "    return vec4<f32>(activate(v.x, act, alpha), activate(v.y, act, alpha),\n",
            "                     activate(v.z, act, alpha), activate(v.w, act, alpha));\n}\n\n",
            "fn derivative4(s: vec4<f32>, act: u32, alpha: f32) -> vec4<f32> {\n",
            "    return vec4<f32>(derivative(s.x, act, alpha), derivative(s.y, act, alpha),\n",
            "                     derivative(s.z, act, alpha), derivative(s.w, act, alpha));\n}\n",
        );
    };
}

activations! {
    /// f(x) = x.
    Identity = 0, saves Output,
        rust: |v, _| v, |_, _| 1.0,
        wgsl: "v", "1.0";
    /// f(x) = x for x > 0, else alpha x. The derivative from the output needs alpha > 0.
    LeakyRelu(f32 = 0.2) = 1, saves Output,
        rust: |v, a| if v > 0.0 { v } else { a * v }, |y, a| if y > 0.0 { 1.0 } else { a },
        wgsl: "select(alpha * v, v, v > 0.0)", "select(alpha, 1.0, s > 0.0)";
    /// f(x) = max(x, 0).
    Relu = 2, saves Output,
        rust: |v, _| v.max(0.0), |y, _| if y > 0.0 { 1.0 } else { 0.0 },
        wgsl: "max(v, 0.0)", "select(0.0, 1.0, s > 0.0)";
    /// f(x) = tanh(x); f' = 1 - y^2.
    Tanh = 3, saves Output,
        rust: |v, _| v.tanh(), |y, _| 1.0 - y * y,
        wgsl: "tanh(v)", "1.0 - s * s";
    /// f(x) = 1 / (1 + e^-x); f' = y (1 - y).
    Sigmoid = 4, saves Output,
        rust: |v, _| 1.0 / (1.0 + (-v).exp()), |y, _| y * (1.0 - y),
        wgsl: "1.0 / (1.0 + exp(-v))", "s * (1.0 - s)";
    /// SiLU (swish), f(x) = x sigmoid(x); f' = s (1 + x (1 - s)) with s = sigmoid(x): not a
    /// function of the output, so its backward keeps the input.
    Silu = 5, saves Input,
        rust: |v, _| v / (1.0 + (-v).exp()),
            |x, _| { let s = 1.0 / (1.0 + (-x).exp()); s * (1.0 + x * (1.0 - s)) },
        wgsl: "v / (1.0 + exp(-v))",
            "(1.0 / (1.0 + exp(-s))) * (1.0 + s * (1.0 - 1.0 / (1.0 + exp(-s))))";
}

impl Activation {
    /// Refuses an activation whose backward needs its input where a kernel fuses it and keeps
    /// only the output (`site` names the kernel or layer).
    pub fn ensure_fusable(self, site: &str) -> Result<()> {
        match self.saves() {
            Saved::Output => Ok(()),
            Saved::Input => Err(Error::Shape(format!(
                "{site}: {self:?}'s backward needs its input, which a fused kernel does not keep; \
                 run it with Activation::Identity and apply {self:?} with activation_forward"
            ))),
        }
    }

    /// LeakyReLU's slope for x < 0; 0 for the others (the shaders' `alpha`).
    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }
}
