//! The undos the built-in plugins declare: which of their actions flip a
//! platform toggle, what that toggle is called, and what puts it back.
//!
//! A step using one of these gets an obligation without declaring
//! anything; a runbook's `undo` table refines it (`safe_until`,
//! `restored_by`) or declares one for any other plugin.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// A plugin's own undo for one of its actions.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredUndo {
    /// The plugin that undoes it.
    pub uses: &'static str,
    /// Its parameters.
    pub with: Map<String, Value>,
    /// What is left flipped until then.
    pub what: &'static str,
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The undo a built-in plugin declares for a step's parameters, if that
/// action flips a toggle.
pub fn declared(uses: &str, with: &BTreeMap<String, Value>) -> Option<DeclaredUndo> {
    let action = with.get("action").and_then(Value::as_str);
    let environments = || {
        with.get("environments")
            .map(|e| json!({ "action": "resume", "environments": e }))
            .unwrap_or_else(|| json!({ "action": "resume" }))
    };
    match (uses, action) {
        ("platform.maintenance", Some("enter")) => Some(DeclaredUndo {
            uses: "platform.maintenance",
            with: obj(json!({ "action": "exit" })),
            what: "maintenance mode on",
        }),
        ("platform.scheduler", Some("pause")) => Some(DeclaredUndo {
            uses: "platform.scheduler",
            with: obj(environments()),
            what: "task scheduling paused",
        }),
        ("platform.rolling-upgrade", _)
            if with.get("pause_scheduling") == Some(&Value::Bool(true)) =>
        {
            Some(DeclaredUndo {
                uses: "platform.scheduler",
                with: obj(json!({ "action": "resume" })),
                what: "task scheduling paused",
            })
        }
        ("platform.shutdown", None | Some("shutdown")) => {
            let mut undo = obj(json!({ "action": "start" }));
            if let Some(keep) = with.get("keep") {
                undo.insert("keep".into(), keep.clone());
            }
            Some(DeclaredUndo {
                uses: "platform.shutdown",
                with: undo,
                what: "application pods shut down",
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: Value) -> BTreeMap<String, Value> {
        obj(value).into_iter().collect()
    }

    #[test]
    fn toggling_actions_declare_their_undo_and_others_do_not() {
        let enter = declared("platform.maintenance", &with(json!({"action": "enter"}))).unwrap();
        assert_eq!(enter.with, obj(json!({"action": "exit"})));
        assert!(declared("platform.maintenance", &with(json!({"action": "exit"}))).is_none());
        let pause = declared(
            "platform.scheduler",
            &with(json!({"action": "pause", "environments": ["production"]})),
        )
        .unwrap();
        assert_eq!(
            pause.with,
            obj(json!({"action": "resume", "environments": ["production"]}))
        );
        assert!(declared("platform.scheduler", &with(json!({"action": "resume"}))).is_none());
        let roll = declared(
            "platform.rolling-upgrade",
            &with(json!({"to": "V5.2.0.01", "pause_scheduling": true})),
        )
        .unwrap();
        assert_eq!(roll.uses, "platform.scheduler");
        assert!(
            declared(
                "platform.rolling-upgrade",
                &with(json!({"to": "V5.2.0.01"}))
            )
            .is_none()
        );
        let down = declared("platform.shutdown", &with(json!({"keep": ["x"]}))).unwrap();
        assert_eq!(down.with, obj(json!({"action": "start", "keep": ["x"]})));
        assert!(declared("platform.shutdown", &with(json!({"action": "start"}))).is_none());
        assert!(declared("exec", &with(json!({"argv": ["true"]}))).is_none());
    }
}
