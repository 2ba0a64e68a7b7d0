//! A `[subset]` resolved against the source's catalog: which models are selected by key, the
//! downward edges, the foreign keys the closure follows up. Everything wrong is found here,
//! before any query: unknown models and columns, an edge on a column without a foreign key,
//! a model that must be selected by key but has no integer key.

use crate::catalog::Catalog;
use crate::pg::sql::quote_ident;
use crate::record::{ForeignKey, Repr, TableSchema};

use super::{split_edge, SubsetConfig};

/// How the rows of one model of the catalog are chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Copied whole.
    Passthrough,
    /// By the set of its single-column integer primary key (index of the column).
    Keyed(usize),
    /// A model without such a key (a join table), followed into from `edge` (an index into
    /// [`Graph::edges`]): a row is copied when its column points at a row selected down.
    Followed(usize),
    /// Nothing can select its rows: copied empty.
    Empty,
}

/// A root: a query selecting keys.
#[derive(Clone, Debug)]
pub struct Root {
    /// Index of the model in the catalog.
    pub table: usize,
    /// The percentage sampled, when given.
    pub sample: Option<f64>,
    /// The SQL condition of its `where` (the rows it selects), when given.
    pub condition: Option<String>,
}

/// A downward edge: rows of `child` whose foreign key `fk` points at selected rows of `parent`.
#[derive(Clone, Debug)]
pub struct Edge {
    /// The referenced model (index in the catalog).
    pub parent: usize,
    /// The referencing model.
    pub child: usize,
    /// The child's foreign key.
    pub fk: ForeignKey,
}

/// A foreign key the closure follows up: rows of `from` reference rows of `to`, keyed.
#[derive(Clone, Debug)]
pub struct Reference {
    /// The referencing model (index in the catalog).
    pub from: usize,
    /// The referenced, keyed model.
    pub to: usize,
    /// The foreign key.
    pub fk: ForeignKey,
}

/// The subset's plan against a catalog.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Per model of the catalog, in its order.
    pub roles: Vec<Role>,
    /// The roots.
    pub roots: Vec<Root>,
    /// The downward edges.
    pub edges: Vec<Edge>,
    /// The foreign keys into keyed models, followed up.
    pub references: Vec<Reference>,
}

impl Graph {
    /// Resolves `config` against `catalog`; every problem is reported.
    pub fn resolve(config: &SubsetConfig, catalog: &Catalog) -> Result<Graph, Vec<String>> {
        let tables = &catalog.tables;
        let mut problems = Vec::new();
        let index_of = |model: &str, what: &str, problems: &mut Vec<String>| {
            let found = tables.iter().position(|t| t.model == model);
            if found.is_none() {
                problems.push(format!(
                    "subset: {what} {model} is not a model of the source (after include and \
                     exclude)"
                ));
            }
            found
        };
        let passthrough: Vec<usize> = config
            .passthrough
            .iter()
            .filter_map(|model| index_of(model, "passthrough model", &mut problems))
            .collect();
        let mut roots = Vec::new();
        for root in &config.roots {
            let Some(table) = index_of(&root.model, "root", &mut problems) else {
                continue;
            };
            if passthrough.contains(&table) {
                problems.push(format!(
                    "subset: {} is both a root and passthrough; a passthrough model is copied \
                     whole",
                    root.model
                ));
            }
            if let Err(why) = integer_key(&tables[table]) {
                problems.push(format!(
                    "subset: root {} cannot be selected by key: {why}",
                    root.model
                ));
            }
            let condition = match root.filter() {
                None => None,
                Some(filter) => match filter.check(&tables[table]) {
                    Err(e) => {
                        problems.push(format!("subset: root {}: {e}", root.model));
                        None
                    }
                    // The filter's SQL keeps the rows its conditions do not select.
                    Ok(()) => filter
                        .sql_condition(&tables[table])
                        .map(|c| format!("NOT {c}")),
                },
            };
            roots.push(Root {
                table,
                sample: root.sample,
                condition,
            });
        }
        let mut edges = Vec::new();
        for entry in &config.follow {
            let Some((model, column)) = split_edge(entry) else {
                continue;
            };
            let Some(child) = index_of(model, "model of follow entry", &mut problems) else {
                continue;
            };
            match follow(catalog, child, column) {
                Ok(edge) => edges.push(edge),
                Err(why) => problems.push(format!("subset: follow {entry:?}: {why}")),
            }
        }
        let mut roles: Vec<Role> = tables
            .iter()
            .enumerate()
            .map(|(index, table)| {
                if passthrough.contains(&index) {
                    Role::Passthrough
                } else {
                    integer_key(table).map_or(Role::Empty, Role::Keyed)
                }
            })
            .collect();
        for (index, edge) in edges.iter().enumerate() {
            if passthrough.contains(&edge.child) {
                continue;
            }
            if !matches!(roles[edge.parent], Role::Keyed(_)) {
                problems.push(format!(
                    "subset: rows are followed from {} into {}, but {} is {}",
                    tables[edge.parent].model,
                    tables[edge.child].model,
                    tables[edge.parent].model,
                    match &roles[edge.parent] {
                        Role::Passthrough => "passthrough (copied whole): list the edge's \
                                              child as passthrough too, or make the parent a root"
                            .to_owned(),
                        _ => format!(
                            "not selected by key ({})",
                            integer_key(&tables[edge.parent]).err().unwrap_or_default()
                        ),
                    }
                ));
            }
            if let Role::Keyed(_) = roles[edge.child] {
                continue;
            }
            let table = &tables[edge.child];
            match &roles[edge.child] {
                Role::Followed(first) => problems.push(format!(
                    "subset: {} has no integer primary key, so rows can be followed into it \
                     along one foreign key only, but both {} and {} are followed",
                    table.model,
                    edge_name(table, &edges[*first].fk),
                    edge_name(table, &edge.fk),
                )),
                _ if !points_at_key(&edge.fk, &tables[edge.parent]) => problems.push(format!(
                    "subset: {} has no integer primary key, so its rows are kept by the key of \
                     the row they belong to, but {} does not reference the primary key of {}",
                    table.model,
                    edge_name(table, &edge.fk),
                    tables[edge.parent].model
                )),
                _ => roles[edge.child] = Role::Followed(index),
            }
        }
        // Every model that can hold rows: its foreign keys must lead to models selected by key
        // (or copied whole), so that the closure can add what they reference.
        let mut references = Vec::new();
        for (from, table) in tables.iter().enumerate() {
            if roles[from] == Role::Empty {
                continue;
            }
            for fk in &table.foreign_keys {
                let Some(to) = tables
                    .iter()
                    .position(|t| t.schema == fk.ref_schema && t.table == fk.ref_table)
                else {
                    // Not copied at all (excluded): the sink's own checks deal with it.
                    continue;
                };
                match roles[to] {
                    Role::Passthrough => {}
                    Role::Keyed(_) => references.push(Reference {
                        from,
                        to,
                        fk: fk.clone(),
                    }),
                    _ => problems.push(format!(
                        "subset: {} references {} ({}), whose rows would have to be added by \
                         key, but {}; list {} as passthrough",
                        table.model,
                        tables[to].model,
                        edge_name(table, fk),
                        integer_key(&tables[to])
                            .err()
                            .unwrap_or_else(|| "it is only followed into".to_owned()),
                        tables[to].model
                    )),
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Graph {
            roles,
            roots,
            edges,
            references,
        })
    }
}

/// The edge `column` of `tables[child]` names: its one foreign key on that column.
fn follow(catalog: &Catalog, child: usize, column: &str) -> Result<Edge, String> {
    let table = &catalog.tables[child];
    let Some(index) = table.column_index(column) else {
        return Err(format!("model {} has no column {column}", table.model));
    };
    let fks: Vec<&ForeignKey> = table
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.contains(&index))
        .collect();
    let fk = match fks[..] {
        [fk] => fk,
        [] => {
            return Err(format!(
                "column {column} of {} has no foreign key, so it points at no rows",
                table.model
            ))
        }
        _ => {
            return Err(format!(
                "column {column} of {} is in {} foreign keys; name a column of only one",
                table.model,
                fks.len()
            ))
        }
    };
    let Some(parent) = catalog
        .tables
        .iter()
        .position(|t| t.schema == fk.ref_schema && t.table == fk.ref_table)
    else {
        return Err(format!(
            "it references {}.{}, which is not copied",
            fk.ref_schema, fk.ref_table
        ));
    };
    Ok(Edge {
        parent,
        child,
        fk: fk.clone(),
    })
}

/// The column of a single-column integer primary key, or why there is none.
pub fn integer_key(table: &TableSchema) -> Result<usize, String> {
    let &[index] = table.primary_key.as_slice() else {
        return Err(match table.primary_key.len() {
            0 => format!("{} has no primary key", table.model),
            n => format!("the primary key of {} has {n} columns", table.model),
        });
    };
    let column = &table.columns[index];
    match column.repr {
        Repr::Int2 | Repr::Int4 | Repr::Int8 if column.binary && !column.array => Ok(index),
        _ => Err(format!(
            "the primary key of {} ({}) is of type {}, not an integer",
            table.model, column.name, column.type_name
        )),
    }
}

/// Whether `fk` is one column referencing `parent`'s integer primary key.
fn points_at_key(fk: &ForeignKey, parent: &TableSchema) -> bool {
    match (integer_key(parent), &fk.ref_columns[..]) {
        (Ok(key), [column]) => fk.columns.len() == 1 && parent.columns[key].name == *column,
        _ => false,
    }
}

/// `Model.column` (or `Model.(a, b)`) of a foreign key, for messages.
fn edge_name(table: &TableSchema, fk: &ForeignKey) -> String {
    let columns: Vec<&str> = fk
        .columns
        .iter()
        .map(|&c| table.columns[c].name.as_str())
        .collect();
    match columns[..] {
        [one] => format!("{}.{one}", table.model),
        _ => format!("{}.({})", table.model, columns.join(", ")),
    }
}

/// `r.a = x.b AND …`: the join of a foreign key of the table aliased `x` with the table it
/// references, aliased `r`.
pub fn join_condition(table: &TableSchema, fk: &ForeignKey) -> String {
    fk.columns
        .iter()
        .zip(&fk.ref_columns)
        .map(|(&column, referenced)| {
            format!(
                "r.{} = x.{}",
                quote_ident(referenced),
                quote_ident(&table.columns[column].name)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}
