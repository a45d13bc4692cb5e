//! Delivery results in the record's journal, and the warnings they make.

use serde_json::{Value, json};

use crate::notify::{Delivery, Notifier, NotifyEvent};
use crate::store::EventKind;
use crate::store::{Change, Event, RecordId, Store};

/// The journal entry of a delivered notification.
pub const DELIVERED: EventKind = EventKind::NotifyDelivered;
/// The journal entry of a notification given up on.
pub const FAILED: EventKind = EventKind::NotifyFailed;

impl Delivery {
    /// The journal entry for this result. It names the target without
    /// secrets, and the error has been masked already.
    pub fn change(&self) -> Change {
        let mut data = json!({
            "target": self.target,
            "event": self.event.as_str(),
            "attempts": self.attempts,
        });
        if let Some(error) = &self.error {
            data["error"] = Value::from(error.clone());
        }
        Change::Event {
            kind: if self.error.is_some() {
                FAILED
            } else {
                DELIVERED
            }
            .to_owned(),
            step: None,
            data,
        }
    }

    /// A line for people: what failed and why (`None` when delivered).
    pub fn warning(&self) -> Option<String> {
        let error = self.error.as_deref()?;
        Some(warning_text(
            self.event.as_str(),
            &self.target,
            self.attempts,
            error,
        ))
    }
}

fn warning_text(event: &str, target: &str, attempts: u32, error: &str) -> String {
    let tries = match attempts {
        0 => "before any try".to_owned(),
        1 => "after 1 try".to_owned(),
        n => format!("after {n} tries"),
    };
    format!("the {event} notification to {target} was not delivered ({tries}): {error}")
}

/// One warning per failed delivery in a record's journal, oldest first.
pub fn warnings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == FAILED)
        .map(|e| {
            let text = |key: &str| e.data.get(key).and_then(Value::as_str).unwrap_or("?");
            let attempts = e.data.get("attempts").and_then(Value::as_u64).unwrap_or(0);
            warning_text(
                text("event"),
                text("target"),
                u32::try_from(attempts).unwrap_or(u32::MAX),
                text("error"),
            )
        })
        .collect()
}

/// After the engine has ended: waits for the notifications still in
/// flight (no longer than their longest deadline) and journals how they
/// went, so that one sent just before the process exits is neither lost
/// nor missing from the record and its report.
pub async fn settle(store: &dyn Store, record: RecordId, notifier: Option<Notifier>) {
    let Some(notifier) = notifier else { return };
    let waiting = notifier.in_flight();
    if waiting > 0 {
        crate::errln!(
            "waiting for {waiting} notification{} to be delivered (at most {})",
            if waiting == 1 { "" } else { "s" },
            crate::duration::format(notifier.wait_bound())
        );
    }
    let results = notifier.drain(notifier.wait_bound()).await;
    journal(store, record, &results);
}

/// Sends `event` about `record` from outside a running engine (an offline
/// force-stop, say), waits for the deliveries and journals them. A record
/// whose plan declares no `[[notify]]` costs nothing.
pub fn notify_now(store: &dyn Store, record: RecordId, event: NotifyEvent, payload: Value) {
    let Ok(text) = store.plan_json(record) else {
        return;
    };
    let Ok(plan) = serde_json::from_str::<crate::plan::Plan>(&text) else {
        return;
    };
    let Some(notifier) = Notifier::for_plan(&plan, record) else {
        return;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::errln!("warning: no notification sent: cannot start the async runtime: {e}");
            return;
        }
    };
    let results = runtime.block_on(async {
        notifier.notify(event, payload);
        notifier.drain(notifier.wait_bound()).await
    });
    journal(store, record, &results);
}

/// Journals delivery results and shows the failures as warnings.
fn journal(store: &dyn Store, record: RecordId, results: &[Delivery]) {
    for warning in results.iter().filter_map(Delivery::warning) {
        crate::errln!("warning: {warning}");
    }
    let changes: Vec<Change> = results.iter().map(Delivery::change).collect();
    if changes.is_empty() {
        return;
    }
    if let Err(e) = store.commit(record, &changes) {
        crate::errln!("warning: how the notifications went could not be journaled: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotifyEvent;

    #[test]
    fn a_failed_delivery_is_journaled_and_read_back_as_a_warning() {
        let failed = Delivery {
            event: NotifyEvent::Paused,
            target: "./hook.sh".into(),
            attempts: 3,
            error: Some("./hook.sh exited with status 1".into()),
        };
        let Change::Event { kind, data, .. } = failed.change() else {
            panic!("an event")
        };
        assert_eq!(kind, FAILED);
        let event = Event {
            seq: 1,
            record: crate::store::RecordId(1),
            at: jiff::Timestamp::UNIX_EPOCH,
            kind,
            step: None,
            data,
        };
        let delivered = Event {
            kind: DELIVERED,
            ..event.clone()
        };
        let found = warnings(&[delivered, event]);
        assert_eq!(found, [failed.warning().unwrap()]);
        assert_eq!(
            found[0],
            "the paused notification to ./hook.sh was not delivered (after 3 tries): ./hook.sh exited with status 1"
        );
    }
}
