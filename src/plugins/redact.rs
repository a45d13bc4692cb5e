//! Hiding secret values in what a plugin logs, reports or returns: the
//! crate's [`crate::redact`], under the name the plugins use.

pub use crate::redact::{MASK, Redactor};
