//! Job identity: which event, which rule, which of its actions and, for a script or plugin
//! action, which of the intents it recorded. The one place that maps a [`JobKey`] to the
//! journal's `action_index` column and back (the column keeps its encoding, so no migration:
//! a plain action is its position, intent `k` of action `a` is `1000·(a+1)+k`).

use super::{Job, NewJob};

/// Intents are numbered from here up, clear of the plain actions' positions.
const INTENT_BASE: usize = 1000;

/// A job's identity (the journal's idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey {
    pub event: String,
    pub rule: String,
    /// Position of the action in the rule's `actions` list.
    pub action: u32,
    /// For a script or plugin action: the position of the intent among those it recorded.
    pub intent: Option<u32>,
}

impl JobKey {
    /// The job of plain action `action` of `rule` for `event`.
    pub fn action(event: &str, rule: &str, action: usize) -> JobKey {
        JobKey {
            event: event.to_string(),
            rule: rule.to_string(),
            action: to_u32(action),
            intent: None,
        }
    }

    /// The job of the `k`-th intent of the script or plugin at `action`.
    pub fn intent(event: &str, rule: &str, action: usize, k: usize) -> JobKey {
        JobKey {
            intent: Some(to_u32(k)),
            ..JobKey::action(event, rule, action)
        }
    }

    /// The `action_index` column this key is stored as.
    pub fn column(&self) -> usize {
        let action = self.action as usize;
        match self.intent {
            None => action,
            Some(k) => INTENT_BASE * (action + 1) + k as usize,
        }
    }

    /// The key stored as (`event`, `rule`, `column`).
    pub fn from_column(event: &str, rule: &str, column: usize) -> JobKey {
        let (action, intent) = match column {
            c if c < INTENT_BASE => (c, None),
            c => (c / INTENT_BASE - 1, Some(c % INTENT_BASE)),
        };
        JobKey {
            event: event.to_string(),
            rule: rule.to_string(),
            action: to_u32(action),
            intent: intent.map(to_u32),
        }
    }

    /// Whether a script or plugin recorded this job (rather than a plain action).
    pub fn is_intent(&self) -> bool {
        self.intent.is_some()
    }
}

impl NewJob {
    /// The key of this job when planned for `event`.
    pub fn key(&self, event: &str) -> JobKey {
        JobKey::from_column(event, &self.rule, self.action_index)
    }
}

impl Job {
    /// This job's key.
    pub fn key(&self) -> JobKey {
        JobKey::from_column(&self.event_id, &self.rule, self.action_index)
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_column() {
        for key in [
            JobKey::action("e", "r", 0),
            JobKey::action("e", "r", 7),
            JobKey::intent("e", "r", 0, 0),
            JobKey::intent("e", "r", 3, 12),
        ] {
            assert_eq!(JobKey::from_column("e", "r", key.column()), key);
        }
        // The stored encoding is unchanged: existing journals keep their keys.
        assert_eq!(JobKey::intent("e", "r", 2, 1).column(), 3001);
        assert_eq!(JobKey::action("e", "r", 2).column(), 2);
        assert!(!JobKey::from_column("e", "r", 999).is_intent());
    }
}
