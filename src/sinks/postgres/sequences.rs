//! Sequences: after the load, every sequence owned by an imported column (serial or identity) is
//! moved so that its next value is past the column's maximum, never backwards; and only with the
//! commit.
//!
//! `setval` is not transactional: a dry run, a failed or a killed import would leave the sequences
//! advanced (at their maximum, for an imported id at the type's limit, so the application's next
//! insert fails). A sequence the role owns is therefore moved with `ALTER SEQUENCE … RESTART
//! WITH`, which PostgreSQL (≥ 10) writes as a new version of the sequence that the rollback
//! discards. It takes a `SHARE ROW EXCLUSIVE` lock on the sequence until the commit: it waits for
//! open transactions that took a value of it (an insert using the default), and sessions asking
//! for a value meanwhile wait for the import's commit. Only sequences that must move are touched.
//!
//! A sequence owned by another role cannot be altered: it is moved with `setval` as the very last
//! step before the commit, which narrows the window but cannot close it (a kill between the two
//! leaves it advanced). A dry run moves no sequence at all; it logs each move it would make.
//!
//! Descending sequences are left alone. Ids at or below zero need nothing from a sequence whose
//! next value is already above them (a `MINVALUE 1` sequence stays where it is). A sequence whose
//! maximum is at or below the imported maximum is left used up: its next use fails with
//! PostgreSQL's "reached maximum value", not with a duplicate key.

use tracing::{debug, info, warn};

use super::PostgresSink;
use crate::error::{Error, Result};
use crate::pg::sql::{quote_ident, quote_literal};

/// Where a sequence must go.
#[derive(Debug, PartialEq, Eq)]
enum Move {
    /// Its next value already is past the imported maximum.
    Stay,
    /// `nextval` must return this next.
    Next(i64),
    /// The imported maximum is at or past the sequence's maximum: give out its last value.
    UsedUp(i64),
}

/// The state of a sequence and the maximum of its column.
#[derive(Debug, Clone, Copy)]
struct State {
    max_id: i64,
    last_value: i64,
    is_called: bool,
    min: i64,
    max: i64,
    increment: i64,
}

impl State {
    /// The move that makes `nextval` return more than `max_id`, never less than now.
    fn plan(&self) -> Move {
        if self.increment < 0 {
            return Move::Stay;
        }
        let current = if self.is_called {
            i128::from(self.last_value) + i128::from(self.increment)
        } else {
            i128::from(self.last_value)
        };
        let wanted = (i128::from(self.max_id) + 1).max(i128::from(self.min));
        if current >= wanted {
            Move::Stay
        } else if wanted <= i128::from(self.max) {
            // wanted ≤ max ≤ i64::MAX.
            Move::Next(wanted as i64)
        } else {
            Move::UsedUp(self.max)
        }
    }
}

impl PostgresSink {
    /// Moves every sequence owned by an imported column past the column's maximum (see the
    /// module's documentation); `setval`s for sequences of other roles wait in
    /// `pending_setvals` for the commit.
    pub(super) async fn reset_sequences(&mut self, order: &[usize]) -> Result<()> {
        let mut pending = Vec::new();
        for &index in order {
            let table = &self.catalog.tables[self.staged[index].table];
            for sequence in &table.sequences {
                let column = quote_ident(&table.columns[sequence.column].name);
                let name = &sequence.qualified_name;
                let literal = quote_literal(name);
                let error = |e: tokio_postgres::Error| {
                    Error::database("resetting the sequence of", &table.model, e)
                };
                let row = self
                    .client
                    .query_opt(
                        &format!(
                            "SELECT x.m::bigint, s.last_value, s.is_called, p.seqmin, p.seqmax, \
                             p.seqincrement, pg_has_role(c.relowner, 'USAGE') \
                             FROM (SELECT max({column}) AS m FROM {qualified}) x, {name} s, \
                             pg_sequence p JOIN pg_class c ON c.oid = p.seqrelid \
                             WHERE p.seqrelid = {literal}::regclass AND x.m IS NOT NULL",
                            qualified = table.qualified_name(),
                        ),
                        &[],
                    )
                    .await
                    .map_err(error)?;
                let Some(row) = row else { continue };
                let state = State {
                    max_id: row.get(0),
                    last_value: row.get(1),
                    is_called: row.get(2),
                    min: row.get(3),
                    max: row.get(4),
                    increment: row.get(5),
                };
                let owned: bool = row.get(6);
                let (next, sql) = match state.plan() {
                    Move::Stay => {
                        debug!(model = %table.model, sequence = %name, "Sequence already past the imported rows.");
                        continue;
                    }
                    Move::Next(next) if owned => {
                        (next, format!("ALTER SEQUENCE {name} RESTART WITH {next}"))
                    }
                    Move::Next(next) => (next, format!("SELECT setval({literal}, {next}, false)")),
                    Move::UsedUp(max) => {
                        warn!(
                            model = %table.model,
                            sequence = %name,
                            max_id = state.max_id,
                            "The imported ids reach the sequence's maximum: its next use fails."
                        );
                        let sql = if owned {
                            format!(
                                "ALTER SEQUENCE {name} RESTART WITH {max}; \
                                 SELECT nextval({literal})"
                            )
                        } else {
                            format!("SELECT setval({literal}, {max}, true)")
                        };
                        (max, sql)
                    }
                };
                if self.options.dry_run {
                    info!(model = %table.model, sequence = %name, next, "Dry run: would move the sequence to give this value next.");
                } else if owned {
                    self.client.batch_execute(&sql).await.map_err(error)?;
                    info!(model = %table.model, sequence = %name, next, "Moved the sequence.");
                } else {
                    pending.push((table.model.clone(), name.clone(), next, sql));
                }
            }
        }
        if !pending.is_empty() {
            warn!(
                sequences = %pending.iter().map(|p| p.1.as_str()).collect::<Vec<_>>().join(", "),
                "This role does not own these sequences, so they are moved with setval just \
                 before the commit; setval is not undone if the import fails or is killed then."
            );
        }
        self.pending_setvals = pending;
        Ok(())
    }

    /// The `setval`s [`reset_sequences`](Self::reset_sequences) left for the commit.
    pub(super) async fn run_pending_setvals(&mut self) -> Result<()> {
        for (model, name, next, sql) in std::mem::take(&mut self.pending_setvals) {
            self.client
                .batch_execute(&sql)
                .await
                .map_err(|e| Error::database("resetting the sequence of", &model, e))?;
            info!(model = %model, sequence = %name, next, "Moved the sequence (setval).");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_id: i64, last_value: i64, is_called: bool) -> State {
        State {
            max_id,
            last_value,
            is_called,
            min: 1,
            max: i64::from(i32::MAX),
            increment: 1,
        }
    }

    #[test]
    fn plans() {
        for (state, expected) in [
            // A fresh sequence and rows 1..=50: next is 51.
            (state(50, 1, false), Move::Next(51)),
            // Already past: never backwards.
            (state(50, 50, true), Move::Stay),
            (state(50, 51, false), Move::Stay),
            (state(50, 900, true), Move::Stay),
            (state(50, 49, true), Move::Next(51)),
            // Ids at or below zero: a MINVALUE 1 sequence is already valid.
            (state(0, 1, false), Move::Stay),
            (state(-5, 1, false), Move::Stay),
            (state(0, 7, true), Move::Stay),
            // At the type's limit: used up, as setval(max) left it.
            (
                state(i64::from(i32::MAX), 1, false),
                Move::UsedUp(i64::from(i32::MAX)),
            ),
            (
                state(i64::from(i32::MAX) - 1, 1, false),
                Move::Next(i64::from(i32::MAX)),
            ),
            (
                state(i64::from(i32::MAX), i64::from(i32::MAX), true),
                Move::Stay,
            ),
            // Descending: left alone.
            (
                State {
                    increment: -1,
                    ..state(50, 1, false)
                },
                Move::Stay,
            ),
            // A bigint sequence at its end does not overflow.
            (
                State {
                    max: i64::MAX,
                    ..state(i64::MAX, i64::MAX, true)
                },
                Move::Stay,
            ),
            (
                State {
                    max: i64::MAX,
                    ..state(i64::MAX, 5, true)
                },
                Move::UsedUp(i64::MAX),
            ),
        ] {
            assert_eq!(state.plan(), expected, "{state:?}");
        }
    }
}
