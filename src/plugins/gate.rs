//! `gate`: a manual checkpoint. The engine asks the step's gate question
//! before starting it (on the terminal, through `runbook ack`, or from the
//! upgrade file's decisions); by the time this runs, the answer was yes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::plugins::executor::{Executor, Outcome, StepContext};

/// The `gate` plugin.
pub struct Gate;

#[async_trait::async_trait]
impl Executor for Gate {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        ctx.log("approved");
        let mut outputs = BTreeMap::new();
        outputs.insert("answer".to_owned(), Value::from("approved"));
        Outcome::Succeeded { outputs }
    }
}
