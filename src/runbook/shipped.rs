//! The runbooks shipped inside the binary, so `semi-downtime@1` resolves on
//! any machine without the source tree.

/// A shipped runbook: the name it is referenced by, the path it has in the
/// repository (used in diagnostics), and its text.
pub struct Shipped {
    /// Referenced as `name@major`.
    pub name: &'static str,
    /// Its path in the repository.
    pub path: &'static str,
    /// The TOML text.
    pub text: &'static str,
}

/// Every shipped runbook.
pub static SHIPPED: &[Shipped] = &[
    Shipped {
        name: "semi-downtime",
        path: "runbooks/semi-downtime.toml",
        text: include_str!("../../runbooks/semi-downtime.toml"),
    },
    Shipped {
        name: "downtime",
        path: "runbooks/downtime.toml",
        text: include_str!("../../runbooks/downtime.toml"),
    },
    Shipped {
        name: "zero-downtime",
        path: "runbooks/zero-downtime.toml",
        text: include_str!("../../runbooks/zero-downtime.toml"),
    },
];

/// Whether a reference names a shipped runbook (`name`, `name@1`,
/// `name@1.2.0`) rather than a path.
pub fn is_shipped_ref(reference: &str) -> bool {
    !reference.contains('/') && !reference.contains('\\') && !reference.ends_with(".toml")
}

/// The shipped runbook called `name`, if any.
pub fn find(name: &str) -> Option<&'static Shipped> {
    SHIPPED.iter().find(|s| s.name == name)
}
