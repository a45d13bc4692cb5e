//! The messages of the external-plugin protocol: JSON, one object per
//! line, tagged by `type`. `schemas/plugin-protocol.schema.json` is
//! generated from these types and checked by a test.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this build speaks.
pub const PROTOCOL: u32 = 1;

/// What `runbook` sends on the plugin's standard input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ToPlugin {
    /// The first line: run the step.
    Start(Start),
    /// The operator asked for a graceful stop: wind down and send a
    /// `result` with status `stopped` (or `succeeded`/`failed`) within the
    /// plugin's `stop_grace`.
    Stop {},
}

/// The `start` message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct Start {
    /// The protocol version; a plugin should refuse one it does not know.
    pub protocol: u32,
    /// The step's `with` table, templates rendered.
    pub params: BTreeMap<String, Value>,
    /// Where and why the step runs.
    pub context: StartContext,
}

/// Facts about the step and the upgrade.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct StartContext {
    /// The step's id.
    pub step: String,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// The upgrade record's id.
    pub record: i64,
    /// The installed version when the upgrade started.
    pub current_version: String,
    /// The version being upgraded to.
    pub target_version: String,
    /// The upgrade mode (semi-downtime, downtime, zero-downtime).
    pub mode: String,
    /// The upgrade record's folder; a plugin may keep files under it.
    pub record_dir: String,
    /// The folder of the step logs (the plugin's `log` lines and standard
    /// error go to `STEP.log` there).
    pub log_dir: String,
    /// Whether the runbook says the step may be run again after a crash.
    pub idempotent: bool,
}

/// What a plugin writes on its standard output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum FromPlugin {
    /// How far the step has got.
    Progress {
        /// Items finished.
        done: u64,
        /// Items in all.
        total: u64,
        /// Per-item status, e.g. one per server.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        items: Vec<Item>,
    },
    /// A line for the step's log.
    Log {
        /// The text.
        message: String,
    },
    /// One output, available to later steps as `steps.ID.outputs.NAME`.
    Output {
        /// Its name.
        name: String,
        /// Its value (any JSON).
        value: Value,
    },
    /// The last message: how the step ended.
    Result {
        /// succeeded, failed or stopped.
        status: ResultStatus,
        /// Why it failed (shown to the operator), or a note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Outputs, merged over those sent with `output` messages.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        outputs: BTreeMap<String, Value>,
    },
}

/// One item's status in a `progress` message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Item {
    /// The item: a server, a database.
    pub name: String,
    /// Its status in the plugin's words.
    pub status: String,
    /// More detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Done.
    Succeeded,
    /// Failed; `message` says why.
    Failed,
    /// Ended early after a `stop` message.
    Stopped,
}

/// What `NAME --describe` prints: one JSON object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Description {
    /// The protocol version the plugin speaks.
    pub protocol: u32,
    /// One line on what the plugin does (shown by `runbook plugins`).
    #[serde(default)]
    pub summary: String,
    /// A JSON Schema for the step's `with` table; `validate` and `plan`
    /// check steps against it. Absent: any parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// The outputs it may set; `*` for any. Absent: none declared, any accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Running it twice does no harm, so a step interrupted by a crash is
    /// run again on resume without asking (unless the step says otherwise).
    #[serde(default)]
    pub idempotent: bool,
    /// How long it needs to stop after a `stop` message before it is
    /// terminated, e.g. "10s" (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace: Option<String>,
}

/// Every message of the protocol, for the published schema.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(title = "runbook external plugin protocol")]
#[expect(dead_code, reason = "only its schema is used")]
enum Message {
    /// runbook -> plugin.
    ToPlugin(ToPlugin),
    /// plugin -> runbook.
    FromPlugin(FromPlugin),
    /// The answer to `--describe`.
    Describe(Description),
}

/// The protocol's JSON Schema.
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Message)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_documented() {
        let line = r#"{"type":"result","status":"succeeded","outputs":{"n":1}}"#;
        let m: FromPlugin = serde_json::from_str(line).unwrap();
        assert!(matches!(
            m,
            FromPlugin::Result {
                status: ResultStatus::Succeeded,
                ..
            }
        ));
        assert!(serde_json::from_str::<FromPlugin>(r#"{"type":"shout"}"#).is_err());
        let stop = serde_json::to_string(&ToPlugin::Stop {}).unwrap();
        assert_eq!(stop, r#"{"type":"stop"}"#);
    }

    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/plugin-protocol.schema.json"
        );
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == crate::schema::to_text(&schema()),
            "schemas/plugin-protocol.schema.json is out of date; regenerate it with `cargo run -- schema plugin-protocol -o schemas/plugin-protocol.schema.json`"
        );
    }
}
