//! `[subset]`: a referentially consistent slice of a PostgreSQL source, e.g. 5 % of the users
//! and exactly the rows that belong to them and that they reference.
//!
//! ```toml
//! [subset]
//! seed = "${SUBSET_SEED:-staging}"                  # key of the sample's hash
//! roots = [{ model = "User", sample = 5 }]           # 5 % of users, by a keyed hash of the key
//! follow = ["Card.created_by", "Review.user_id"]     # what belongs to a selected row
//! passthrough = ["Tag", "ResourceConfig"]            # copied whole
//! ```
//!
//! What is copied, computed in the source's one snapshot before any row is read
//! ([`select`](select::select)):
//! 1. **down**: the rows each root selects (a keyed sample of its primary key and/or conditions as
//!    `filter` has them), then every row whose `follow` column points at a row selected so far,
//!    repeatedly (so a self-reference such as `HelpWantedComment.parent_id` takes whole threads);
//! 2. **up**: every row any copied row references, through every foreign key, transitively,
//!    until nothing new appears. Only parents are added here, never their other children, so the
//!    slice cannot grow into the whole database;
//! 3. passthrough models are copied whole (and what they reference is added as in 2); every
//!    other model is copied empty.
//!
//! Foreign keys therefore always hold in the copy. Selected keys are kept as compressed bitmaps
//! (`roaring`, at most about one bit per key value in the key's range, a few bytes per key when
//! sparse) and sent to the server in chunks of [`CHUNK`] keys (`chunk_keys`), so memory is bounded by the key
//! ranges, not by the rows; nothing is written on the source (no temporary tables). The rows are
//! then read as for a full copy and kept by key ([`keep`]).
//!
//! A model whose rows are selected by key (roots, models rows are followed into or pulled up
//! into) needs a single-column integer primary key; a join table without one (e.g. `card_tags`)
//! can still be followed into from its parent and is kept by its parent's key.

mod graph;
mod keep;
pub mod select;

use serde::Deserialize;

use crate::transforms::{Condition, FilterConfig, FilterMatch};

pub use graph::Graph;
pub use keep::Keep;
pub use select::{select, Selection};

/// Keys per query when sets of keys are sent to the server, unless `chunk_keys` says otherwise.
pub const CHUNK: usize = 100_000;

/// The `[subset]` section of a pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsetConfig {
    /// Where the slice starts: rows of these models, sampled and/or matching conditions.
    pub roots: Vec<RootConfig>,
    /// Downward edges, as `"Model.column"`: the rows of `Model` whose foreign-key `column` points
    /// at a selected row belong to the slice too.
    #[serde(default)]
    pub follow: Vec<String>,
    /// Models copied whole (tags, categories, configuration).
    #[serde(default)]
    pub passthrough: Vec<String>,
    /// The key of the sample's hash: the same seed selects the same rows in every run; another
    /// seed, another sample.
    #[serde(default)]
    pub seed: Option<String>,
    /// Keys sent to the server per query (default [`CHUNK`]): fewer queries with more, less
    /// memory with fewer (8 bytes a key on each side).
    #[serde(default)]
    pub chunk_keys: Option<usize>,
}

/// One root of a subset: the rows of `model` that the sample and the conditions select.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// The model.
    pub model: String,
    /// Percent of the rows (0 < sample ≤ 100), chosen by a keyed hash of the primary key: the
    /// same rows in every run with the same seed.
    #[serde(default)]
    pub sample: Option<f64>,
    /// Conditions a selected row meets, as a `filter` writes them.
    #[serde(default, rename = "where")]
    pub conditions: Vec<Condition>,
    /// `"all"` (default): every condition holds; `"any"`: one does.
    #[serde(default, rename = "match")]
    pub matching: FilterMatch,
}

impl RootConfig {
    /// The root's conditions as a filter (whose SQL keeps the rows they do not select).
    fn filter(&self) -> Option<FilterConfig> {
        (!self.conditions.is_empty())
            .then(|| FilterConfig::new(&self.model, self.conditions.clone(), self.matching))
    }
}

impl SubsetConfig {
    /// Problems found without the catalog: no roots, a root selecting everything or nothing,
    /// conditions without their operands, an edge not written `Model.column`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.roots.is_empty() {
            problems.push(
                "subset: roots must name at least one model to start from, e.g. \
                 roots = [{ model = \"User\", sample = 5 }]"
                    .to_owned(),
            );
        }
        for root in &self.roots {
            match root.sample {
                Some(percent) if !(percent > 0.0 && percent <= 100.0) => problems.push(format!(
                    "subset: the sample of root {} is {percent}; it is a percentage above 0 and \
                     at most 100",
                    root.model
                )),
                None if root.conditions.is_empty() => problems.push(format!(
                    "subset: root {} selects every row: give it a sample (percent) or where \
                     conditions, or list it under passthrough",
                    root.model
                )),
                _ => {}
            }
            if let Some(Err(e)) = root.filter().map(|f| f.validate()) {
                problems.push(format!("subset: root {}: {e}", root.model));
            }
        }
        if self.chunk_keys == Some(0) {
            problems.push("subset: chunk_keys must be at least 1".to_owned());
        }
        for edge in &self.follow {
            if split_edge(edge).is_none() {
                problems.push(format!(
                    "subset: follow entry {edge:?} is not \"Model.column\" (the column of Model \
                     whose foreign key points at the rows selected before)"
                ));
            }
        }
        problems
    }
}

/// `"Model.column"` → (`Model`, `column`); the column is after the last dot, so a model named
/// `schema.table` works.
fn split_edge(edge: &str) -> Option<(&str, &str)> {
    edge.rsplit_once('.')
        .filter(|(model, column)| !model.is_empty() && !column.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SubsetConfig {
        toml::from_str(text).expect("subset parses")
    }

    #[test]
    fn validate_names_each_problem() {
        let config = parse(
            r#"
            roots = [{ model = "User", sample = 0 }, { model = "Card" }]
            follow = ["Card", "Review.user_id", ".x"]
            "#,
        );
        let problems = config.validate();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("root User is 0"), "{}", problems[0]);
        assert!(problems[1].contains("root Card selects every row"));
        assert!(problems[2].contains("\"Card\" is not \"Model.column\""));
        assert!(problems[3].contains("\".x\""));
    }

    #[test]
    fn a_sample_or_conditions_make_a_root() {
        let config = parse(
            r#"
            roots = [{ model = "User", sample = 100 },
                     { model = "ForumThread", where = [{ column = "id", op = ">", value = 3 }] }]
            follow = ["schema.table.column"]
            "#,
        );
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(
            split_edge("schema.table.column"),
            Some(("schema.table", "column"))
        );
    }
}
