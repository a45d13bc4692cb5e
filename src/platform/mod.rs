//! The platform being upgraded, behind one trait.
//!
//! `api` is the trait, `model` the data it speaks, `figures` the pure
//! computations behind the verification page, and `sim` a simulator that
//! keeps its state in a local JSON file.

mod api;
mod error;
pub mod figures;
pub mod model;
pub mod sim;

pub use api::{Platform, PlatformResult};
pub use error::{PlatformError, PlatformErrorKind};
