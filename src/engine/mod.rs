//! The engine: runs a plan's steps on tokio, durably journaled, and obeys
//! the operator's commands.

pub mod apply;
pub mod decide;
pub mod report;
pub mod run;
pub mod state;
pub mod terminal;

pub use run::{Ending, Engine, EngineConfig, EngineError};
