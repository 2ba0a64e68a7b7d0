//! Computes a subset's rows in the source's snapshot: the roots' keys, then down along the
//! edges, then up along every foreign key until nothing new appears. Keys live in bitmaps; each
//! query takes at most a chunk of them ([`CHUNK`](super::CHUNK) by default) and streams its
//! answer, so neither side holds more.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::{pin_mut, TryStreamExt};
use roaring::RoaringTreemap;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use tracing::debug;

use super::graph::{join_condition, Graph, Role};
use super::Keep;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::pg::sql::quote_ident;
use crate::record::TableSchema;

/// What a subset copies: per model of the catalog, its rows, and how to keep them.
#[derive(Debug)]
pub struct Selection {
    /// Rows copied per model, in the catalog's order.
    pub rows: Vec<(String, u64)>,
    /// The transform keeping exactly those rows.
    pub keep: Keep,
}

/// One model's keys while the subset is computed.
#[derive(Default)]
struct Keys {
    /// Selected going down (roots and followed rows): what edges follow from.
    down: RoaringTreemap,
    /// Selected in all (down, and added by the closure).
    all: RoaringTreemap,
    /// Selected down, edges not yet followed from them.
    new_down: RoaringTreemap,
    /// Selected, references not yet followed from them.
    new_up: RoaringTreemap,
}

/// Runs the subset's queries on `client`, which must be inside the source's snapshot, so the
/// subset and the copy see the same rows. `seed` keys the roots' samples; queries take at most
/// `chunk` keys; `filters` are the conditions the source reads each model with (a pipeline's
/// `filter`s), so rows it will not read neither count nor pull in what they reference.
pub async fn select(
    client: &Client,
    catalog: &Catalog,
    graph: &Graph,
    seed: &str,
    chunk: usize,
    filters: &BTreeMap<String, Vec<String>>,
) -> Result<Selection> {
    let tables = &catalog.tables;
    let rows_of: Vec<String> = tables.iter().map(|t| rows_read(t, filters)).collect();
    let mut keys: Vec<Keys> = tables.iter().map(|_| Keys::default()).collect();
    let mut followed_rows = vec![0u64; tables.len()];
    for root in &graph.roots {
        let table = &tables[root.table];
        let Role::Keyed(key) = graph.roles[root.table] else {
            continue;
        };
        let key = quote_ident(&table.columns[key].name);
        let mut conditions = Vec::new();
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(percent) = root.sample {
            // The first 60 bits of md5(seed ‖ key) below ⌊2^60 × percent / 100⌋ (the percentage
            // to a millionth of a percent, in integers, so the bound is exact).
            let millionths = (percent * 1e6).round() as u128;
            let threshold = ((1u128 << 60) * millionths / 100_000_000) as u64;
            conditions.push(format!(
                "('x' || substr(md5($1::text || x.{key}::text), 1, 15))::bit(60)::bigint < \
                 {threshold}"
            ));
            params.push(&seed);
        }
        conditions.extend(root.condition.clone());
        let sql = format!(
            "SELECT x.{key}::int8 FROM {} x WHERE {}",
            rows_of[root.table],
            conditions.join(" AND ")
        );
        let entry = &mut keys[root.table];
        stream_keys(client, &table.model, &sql, &params, |k| {
            if entry.down.insert(k) {
                entry.all.insert(k);
                entry.new_down.insert(k);
                entry.new_up.insert(k);
            }
        })
        .await?;
    }
    // Down: follow the edges from every newly selected row until none is new.
    while let Some(parent) = keys.iter().position(|k| !k.new_down.is_empty()) {
        let taken = std::mem::take(&mut keys[parent].new_down);
        let parent_table = &tables[parent];
        // Only keyed models are parents of edges (`Graph::resolve` refuses the others).
        let Role::Keyed(parent_key) = graph.roles[parent] else {
            continue;
        };
        let parent_key = quote_ident(&parent_table.columns[parent_key].name);
        for edge in graph.edges.iter().filter(|e| e.parent == parent) {
            let child = &tables[edge.child];
            match graph.roles[edge.child] {
                Role::Keyed(child_key) => {
                    let sql = format!(
                        "SELECT x.{}::int8 FROM {} x JOIN {} r ON {} \
                         WHERE r.{parent_key} = ANY($1::int8[])",
                        quote_ident(&child.columns[child_key].name),
                        rows_of[edge.child],
                        parent_table.qualified_name(),
                        join_condition(child, &edge.fk),
                    );
                    for chunk in chunks(&taken, chunk) {
                        let entry = &mut keys[edge.child];
                        stream_keys(client, &child.model, &sql, &[&chunk], |k| {
                            if entry.down.insert(k) {
                                entry.new_down.insert(k);
                                if entry.all.insert(k) {
                                    entry.new_up.insert(k);
                                }
                            }
                        })
                        .await?;
                    }
                }
                Role::Followed(_) => {
                    // Its rows: counted, and what they reference added.
                    let column = quote_ident(&child.columns[edge.fk.columns[0]].name);
                    let rows = format!("x.{column} = ANY($1::int8[])");
                    let sql = format!(
                        "SELECT count(*) FROM {} x WHERE {rows}",
                        rows_of[edge.child]
                    );
                    for chunk in chunks(&taken, chunk) {
                        let count: i64 = client
                            .query_one(&sql, &[&chunk])
                            .await
                            .map_err(|e| {
                                Error::database("selecting the subset of", &child.model, e)
                            })?
                            .get(0);
                        followed_rows[edge.child] += count as u64;
                        let rows = Some((rows.as_str(), &chunk));
                        add_references(
                            client, catalog, &rows_of, graph, &mut keys, edge.child, rows,
                        )
                        .await?;
                    }
                }
                _ => {}
            }
        }
    }
    // Passthrough models: everything they reference.
    for (index, role) in graph.roles.iter().enumerate() {
        if *role == Role::Passthrough {
            add_references(client, catalog, &rows_of, graph, &mut keys, index, None).await?;
        }
    }
    // Up: what every selected row references, until nothing new appears.
    while let Some(from) = keys.iter().position(|k| !k.new_up.is_empty()) {
        let taken = std::mem::take(&mut keys[from].new_up);
        let Role::Keyed(key) = graph.roles[from] else {
            continue;
        };
        let rows = format!(
            "x.{} = ANY($1::int8[])",
            quote_ident(&tables[from].columns[key].name)
        );
        for chunk in chunks(&taken, chunk) {
            let rows = Some((rows.as_str(), &chunk));
            add_references(client, catalog, &rows_of, graph, &mut keys, from, rows).await?;
        }
    }
    let mut rows = Vec::with_capacity(tables.len());
    for (index, table) in tables.iter().enumerate() {
        let count = match graph.roles[index] {
            Role::Keyed(_) => keys[index].all.len(),
            Role::Followed(_) => followed_rows[index],
            Role::Empty => 0,
            Role::Passthrough => {
                let sql = format!("SELECT count(*) FROM {} x", rows_of[index]);
                let count: i64 = client
                    .query_one(&sql, &[])
                    .await
                    .map_err(|e| Error::database("counting the rows of", &table.model, e))?
                    .get(0);
                count as u64
            }
        };
        rows.push((table.model.clone(), count));
    }
    debug!(rows = ?rows, "Subset selected.");
    let down: Vec<Arc<RoaringTreemap>> = keys
        .iter_mut()
        .map(|k| Arc::new(std::mem::take(&mut k.down)))
        .collect();
    let all: Vec<Arc<RoaringTreemap>> = keys.into_iter().map(|k| Arc::new(k.all)).collect();
    Ok(Selection {
        rows,
        keep: Keep::new(catalog, graph, all, down),
    })
}

/// Adds to their models the keys of every row that rows of `from` reference: the rows it reads
/// (`rows_of`) matching a condition on alias `x` whose `$1` is a chunk of keys, or all of them
/// (`None`).
async fn add_references(
    client: &Client,
    catalog: &Catalog,
    rows_of: &[String],
    graph: &Graph,
    keys: &mut [Keys],
    from: usize,
    rows: Option<(&str, &Vec<i64>)>,
) -> Result<()> {
    let tables = &catalog.tables;
    let table = &tables[from];
    for reference in graph.references.iter().filter(|r| r.from == from) {
        let Role::Keyed(key) = graph.roles[reference.to] else {
            continue;
        };
        let target = &tables[reference.to];
        let (condition, params): (&str, Vec<&(dyn ToSql + Sync)>) = match rows {
            Some((condition, chunk)) => (condition, vec![chunk]),
            None => ("TRUE", Vec::new()),
        };
        let sql = format!(
            "SELECT DISTINCT r.{}::int8 FROM {} x JOIN {} r ON {} WHERE {condition}",
            quote_ident(&target.columns[key].name),
            rows_of[from],
            target.qualified_name(),
            join_condition(table, &reference.fk),
        );
        let entry = &mut keys[reference.to];
        stream_keys(client, &target.model, &sql, &params, |k| {
            if entry.all.insert(k) {
                entry.new_up.insert(k);
            }
        })
        .await?;
    }
    Ok(())
}

/// The rows of `table` the source reads: the table, or the table under its pushed-down
/// conditions (as a subquery, so that a join with another table cannot make a column ambiguous).
fn rows_read(table: &TableSchema, filters: &BTreeMap<String, Vec<String>>) -> String {
    match filters.get(&table.model) {
        Some(conditions) if !conditions.is_empty() => format!(
            "(SELECT * FROM {} WHERE {})",
            table.qualified_name(),
            conditions.join(" AND ")
        ),
        _ => table.qualified_name(),
    }
}

/// Runs `sql` and hands each key of its first column (an `int8`) to `each`, as it streams in.
async fn stream_keys(
    client: &Client,
    model: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    mut each: impl FnMut(u64),
) -> Result<()> {
    let error = |e| Error::database("selecting the subset of", model, e);
    let stream = client
        .query_raw(sql, params.iter().copied())
        .await
        .map_err(error)?;
    pin_mut!(stream);
    while let Some(row) = stream.try_next().await.map_err(error)? {
        if let Some(key) = row.get::<_, Option<i64>>(0) {
            each(key as u64);
        }
    }
    Ok(())
}

/// The keys of `set`, at most `size` at a time, as the `int8[]` a query takes.
fn chunks(set: &RoaringTreemap, size: usize) -> impl Iterator<Item = Vec<i64>> + '_ {
    let mut iter = set.iter();
    std::iter::from_fn(move || {
        let chunk: Vec<i64> = iter.by_ref().take(size.max(1)).map(|k| k as i64).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}
