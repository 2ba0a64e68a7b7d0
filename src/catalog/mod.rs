//! What to move and in which order: tables, columns, keys and sequences read from `pg_catalog`,
//! named by the CityForge preset or automatically, and sorted parents first.
//!
//! Ordinary and partitioned tables are listed (partitions are read through their parent); views,
//! foreign tables and sequences are not. A table the preset does not know is never left out: it is
//! exported under its table name after the preset's models.

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::GenericClient;

use crate::record::{Column, ForeignKey, Generated, OwnedSequence, Section, TableSchema};

mod types;

pub use types::scalar_repr;
use types::TypeResolver;

/// The CityForge models in export order, with their tables (`schema.sql`, the seed's docs).
pub const CITYFORGE_MODELS: [(&str, &str); 20] = [
    ("User", "users"),
    ("Tag", "tags"),
    ("Card", "cards"),
    ("CardSubmission", "card_submissions"),
    ("CardModification", "card_modifications"),
    ("Review", "reviews"),
    ("ResourceCategory", "resource_categories"),
    ("ResourceItem", "resource_items"),
    ("QuickAccessItem", "quick_access_items"),
    ("ResourceConfig", "resource_config"),
    ("ForumCategory", "forum_categories"),
    ("ForumCategoryRequest", "forum_category_requests"),
    ("ForumThread", "forum_threads"),
    ("ForumPost", "forum_posts"),
    ("ForumReport", "forum_reports"),
    ("HelpWantedPost", "help_wanted_posts"),
    ("HelpWantedComment", "help_wanted_comments"),
    ("HelpWantedReport", "help_wanted_reports"),
    ("IndexingJob", "indexing_jobs"),
    ("TokenBlacklist", "token_blacklist"),
];

/// The CityForge relationship table, exported when both `Card` and `Tag` are.
pub const CARD_TAGS: &str = "card_tags";

/// How tables are named in the export document: `--naming` on the command line, `naming` in a
/// pipeline file's source (`cityforge` or `auto`; neither given means detect).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// `cityforge` when the database has the CityForge tables, else `auto`.
    #[default]
    #[value(skip)]
    #[serde(skip)]
    Detect,
    /// The CityForge models (User, Card, …) in the Python exporter's order.
    #[value(name = "cityforge")]
    #[serde(rename = "cityforge")]
    CityForge,
    /// Every table under its table name, parents before children.
    Auto,
}

/// Errors while reading or selecting from the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A query on pg_catalog failed.
    #[error("reading the table catalog failed")]
    Query(#[source] tokio_postgres::Error),
    /// `--include` or `--exclude` names a model that does not exist.
    #[error("unknown model{} {}; valid models: {}", if .unknown.len() > 1 { "s" } else { "" }, .unknown.join(", "), .valid.join(", "))]
    UnknownModels {
        /// The names that matched nothing.
        unknown: Vec<String>,
        /// Every valid name.
        valid: Vec<String>,
    },
    /// `--naming cityforge` on a database without the CityForge tables.
    #[error("the CityForge naming needs the CityForge tables, but schema \"{schema}\" lacks: {}", .missing.join(", "))]
    NotCityForge {
        /// Schema searched.
        schema: String,
        /// Missing tables.
        missing: Vec<String>,
    },
    /// A requested schema does not exist.
    #[error("schema \"{0}\" does not exist in this database")]
    NoSchema(String),
    /// The database has no table to read: most likely not the database that was meant.
    #[error(
        "database \"{database}\" has no tables in schema {}: nothing to export. Check that the \
         connection names the right database (the URL's path, POSTGRES_DB or PGDATABASE)",
        .schemas.join(", ")
    )]
    NoTables {
        /// The database connected to.
        database: String,
        /// The schemas searched.
        schemas: Vec<String>,
    },
    /// `--include` / `--exclude` left no model to read.
    #[error("the model selection leaves nothing to export")]
    NothingSelected,
}

fn query_error(error: tokio_postgres::Error) -> CatalogError {
    CatalogError::Query(error)
}

/// The tables of a database, in export order.
#[derive(Clone, Debug, PartialEq)]
pub struct Catalog {
    /// Tables in export order: `data` models (parents first), then relationships.
    pub tables: Vec<TableSchema>,
    /// The naming that was applied.
    pub naming: Naming,
    /// Tables exported under their table names although the CityForge preset is in use.
    pub unknown_to_preset: Vec<String>,
}

impl Catalog {
    /// Every table's schema-qualified, quoted name, in catalog order.
    pub fn qualified_names(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.qualified_name()).collect()
    }

    /// The qualified names of the tables at `indexes`.
    pub fn qualified_names_of(&self, indexes: &[usize]) -> Vec<String> {
        indexes
            .iter()
            .map(|&i| self.tables[i].qualified_name())
            .collect()
    }

    /// Reads the tables of `schemas` and names them.
    pub async fn load(
        client: &impl GenericClient,
        schemas: &[String],
        naming: Naming,
    ) -> Result<Catalog, CatalogError> {
        for schema in schemas {
            let found = client
                .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[schema])
                .await
                .map_err(query_error)?;
            if found.is_none() {
                return Err(CatalogError::NoSchema(schema.clone()));
            }
        }
        let mut tables = read_tables(client, schemas).await?;
        // Schemas in the order they were asked for, tables by name within each.
        tables.sort_by_key(|t| {
            let position = schemas.iter().position(|s| *s == t.schema.schema);
            (position, t.schema.table.clone())
        });
        name_tables(tables, schemas, naming)
    }

    /// Every model name, in export order.
    pub fn model_names(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.model.clone()).collect()
    }

    /// Keeps the models named by `include` (when given) minus those in `exclude`. The CityForge
    /// relationship `card_tags` follows `Card` and `Tag`: kept only when both are.
    pub fn select(
        &mut self,
        include: Option<&[String]>,
        exclude: &[String],
    ) -> Result<(), CatalogError> {
        let valid: Vec<String> = self
            .tables
            .iter()
            .filter(|t| t.section == Section::Data)
            .map(|t| t.model.clone())
            .collect();
        let requested = include.unwrap_or(&[]).iter().chain(exclude);
        let unknown: Vec<String> = requested
            .filter(|name| !valid.contains(name) && !self.is_relationship(name))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(CatalogError::UnknownModels { unknown, valid });
        }
        self.tables
            .retain(|t| model_selected(&t.model, include, exclude));
        Ok(())
    }

    fn is_relationship(&self, name: &str) -> bool {
        self.tables
            .iter()
            .any(|t| t.section == Section::Relationships && t.model == name)
    }

    /// The table with this model name.
    pub fn table(&self, model: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.model == model)
    }
}

/// Whether `--include` / `--exclude` select a model. `card_tags` is selected when named, or when
/// both `Card` and `Tag` are (the seed's rule), unless excluded.
pub fn model_selected(model: &str, include: Option<&[String]>, exclude: &[String]) -> bool {
    let listed = |list: &[String], name: &str| list.iter().any(|m| m == name);
    let keep = |name: &str| include.is_none_or(|list| listed(list, name)) && !listed(exclude, name);
    if listed(exclude, model) {
        return false;
    }
    if model == CARD_TAGS {
        let named = include.is_some_and(|list| listed(list, CARD_TAGS));
        return named || (keep("Card") && keep("Tag"));
    }
    keep(model)
}

/// Estimated rows of each table (in the order given; a partitioned table sums its partitions),
/// without reading any and without taking a lock (a table locked by another session must not
/// stall the export before it starts): the larger of the rows counted by the last `ANALYZE`
/// (`reltuples`, -1 when never analyzed) and the live rows the statistics system counts since
/// (0 on a standby, whose statistics are its own). For progress and `run --dry-run`; a table that
/// no longer exists counts 0.
pub async fn estimate_rows(
    client: &impl GenericClient,
    tables: &[TableSchema],
) -> Result<Vec<u64>, CatalogError> {
    let names: Vec<String> = tables.iter().map(TableSchema::qualified_name).collect();
    // Catalog rows and statistics only: pg_relation_size or pg_partition_tree would lock.
    // to_regclass, not ::regclass: a missing table gives no row rather than an error, which would
    // abort the export's snapshot transaction.
    let rows = client
        .query(
            "WITH RECURSIVE tree(ord, relid) AS ( \
                 SELECT w.ord, to_regclass(w.name)::oid \
                   FROM unnest($1::text[]) WITH ORDINALITY AS w(name, ord) \
                 UNION ALL \
                 SELECT tree.ord, i.inhrelid FROM tree \
                   JOIN pg_class parent ON parent.oid = tree.relid AND parent.relkind = 'p' \
                   JOIN pg_inherits i ON i.inhparent = tree.relid \
             ) \
             SELECT tree.ord::int8, \
                    sum(greatest(c.reltuples::int8, pg_stat_get_live_tuples(c.oid), 0))::int8 \
               FROM tree JOIN pg_class c ON c.oid = tree.relid \
              WHERE c.relkind IN ('r', 'm') \
              GROUP BY tree.ord",
            &[&names],
        )
        .await
        .map_err(query_error)?;
    let mut estimates = vec![0u64; tables.len()];
    for row in rows {
        let (ord, rows): (i64, i64) = (row.get(0), row.get(1));
        let slot = usize::try_from(ord - 1)
            .ok()
            .and_then(|index| estimates.get_mut(index));
        if let Some(slot) = slot {
            *slot = u64::try_from(rows).unwrap_or(0);
        }
    }
    Ok(estimates)
}

/// A table as read from the catalog, before naming.
#[derive(Debug)]
struct RawTable {
    oid: u32,
    schema: TableSchema,
}

async fn read_tables(
    client: &impl GenericClient,
    schemas: &[String],
) -> Result<Vec<RawTable>, CatalogError> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind = 'p' \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY($1) \
             ORDER BY n.nspname, c.relname",
            &[&schemas],
        )
        .await
        .map_err(query_error)?;
    let mut tables: Vec<RawTable> = rows
        .iter()
        .map(|row| RawTable {
            oid: row.get(0),
            schema: TableSchema {
                model: String::new(),
                schema: row.get(1),
                table: row.get(2),
                section: Section::Data,
                columns: Vec::new(),
                primary_key: Vec::new(),
                foreign_keys: Vec::new(),
                unique_keys: Vec::new(),
                sequences: Vec::new(),
                partitioned: row.get(3),
            },
        })
        .collect();
    if tables.is_empty() {
        return Ok(tables);
    }
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let by_oid: HashMap<u32, usize> = oids.iter().enumerate().map(|(i, &o)| (o, i)).collect();

    // Columns, with the type resolved through domains to its base type (and array element).
    let rows = client
        .query(
            "SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.atttypid, a.atttypmod, a.attnotnull, a.atthasdef, \
                    a.attgenerated::text, a.attidentity::text \
             FROM pg_attribute a \
             WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attrelid, a.attnum",
            &[&oids],
        )
        .await
        .map_err(query_error)?;
    let type_oids: BTreeSet<u32> = rows.iter().map(|r| r.get::<_, u32>(4)).collect();
    let types = TypeResolver::load(client, type_oids).await?;
    let mut attnums: HashMap<u32, Vec<i16>> = HashMap::new();
    for row in &rows {
        let rel: u32 = row.get(0);
        let Some(&index) = by_oid.get(&rel) else {
            continue;
        };
        let type_oid: u32 = row.get(4);
        let typmod: i32 = row.get(5);
        let (repr, array, binary, base) = types.repr_of(type_oid);
        let generated: String = row.get(8);
        let identity: String = row.get(9);
        let max_chars = match base {
            // varchar and bpchar: typmod is the length + 4.
            1043 | 1042 if typmod >= 4 => Some((typmod - 4) as u32),
            _ => None,
        };
        tables[index].schema.columns.push(Column {
            name: row.get(2),
            type_name: row.get(3),
            repr,
            array,
            binary,
            nullable: !row.get::<_, bool>(6),
            has_default: row.get(7),
            generated: match (generated.as_str(), identity.as_str()) {
                ("s", _) => Generated::Stored,
                (_, "a") => Generated::IdentityAlways,
                (_, "d") => Generated::IdentityByDefault,
                _ => Generated::No,
            },
            max_chars,
        });
        attnums.entry(rel).or_default().push(row.get(1));
    }
    let column_index = |rel: u32, attnum: i16| -> Option<usize> {
        attnums.get(&rel)?.iter().position(|&a| a == attnum)
    };

    // Constraints: primary keys, unique keys, foreign keys.
    let rows = client
        .query(
            "SELECT con.conrelid, con.contype::text, con.conname::text, con.conkey, \
                    fn.nspname::text, f.relname::text, \
                    ARRAY(SELECT fa.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i) \
                          JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.attnum \
                          ORDER BY k.i) \
             FROM pg_constraint con \
             LEFT JOIN pg_class f ON f.oid = con.confrelid \
             LEFT JOIN pg_namespace fn ON fn.oid = f.relnamespace \
             WHERE con.conrelid = ANY($1) AND con.contype IN ('p', 'u', 'f') \
             ORDER BY con.conrelid, con.conname",
            &[&oids],
        )
        .await
        .map_err(query_error)?;
    for row in &rows {
        let rel: u32 = row.get(0);
        let Some(&index) = by_oid.get(&rel) else {
            continue;
        };
        let kind: String = row.get(1);
        let keys: Vec<i16> = row.get(3);
        let columns: Vec<usize> = keys.iter().filter_map(|&a| column_index(rel, a)).collect();
        let table = &mut tables[index].schema;
        match kind.as_str() {
            "p" => {
                table.primary_key = columns.clone();
                table.unique_keys.push(columns);
            }
            "u" => table.unique_keys.push(columns),
            _ => table.foreign_keys.push(ForeignKey {
                name: row.get(2),
                columns,
                ref_schema: row.get(4),
                ref_table: row.get(5),
                ref_columns: row.get(6),
            }),
        }
    }

    // Unique indexes that are not constraints.
    let rows = client
        .query(
            "SELECT i.indrelid, i.indkey::int2[] FROM pg_index i \
             WHERE i.indrelid = ANY($1) AND i.indisunique AND i.indpred IS NULL \
               AND i.indexprs IS NULL \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            &[&oids],
        )
        .await
        .map_err(query_error)?;
    for row in &rows {
        let rel: u32 = row.get(0);
        let Some(&index) = by_oid.get(&rel) else {
            continue;
        };
        let keys: Vec<i16> = row.get(1);
        let columns: Vec<usize> = keys.iter().filter_map(|&a| column_index(rel, a)).collect();
        tables[index].schema.unique_keys.push(columns);
    }

    // Sequences owned by columns (serial: 'a', identity: 'i').
    let rows = client
        .query(
            "SELECT d.refobjid, d.refobjsubid::int2, \
                    quote_ident(sn.nspname) || '.' || quote_ident(s.relname) \
             FROM pg_depend d \
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
             JOIN pg_namespace sn ON sn.oid = s.relnamespace \
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
               AND d.deptype IN ('a', 'i') AND d.refobjid = ANY($1) AND d.refobjsubid > 0 \
             ORDER BY 1, 2",
            &[&oids],
        )
        .await
        .map_err(query_error)?;
    for row in &rows {
        let rel: u32 = row.get(0);
        let Some(&index) = by_oid.get(&rel) else {
            continue;
        };
        if let Some(column) = column_index(rel, row.get(1)) {
            tables[index].schema.sequences.push(OwnedSequence {
                column,
                qualified_name: row.get(2),
            });
        }
    }
    Ok(tables)
}

fn name_tables(
    raw: Vec<RawTable>,
    schemas: &[String],
    naming: Naming,
) -> Result<Catalog, CatalogError> {
    let primary_schema = schemas.first().map(String::as_str).unwrap_or("public");
    let find = |table: &str| {
        raw.iter()
            .position(|t| t.schema.schema == primary_schema && t.schema.table == table)
    };
    let preset_tables: Vec<&str> = CITYFORGE_MODELS
        .iter()
        .map(|(_, t)| *t)
        .chain([CARD_TAGS])
        .collect();
    let missing: Vec<String> = preset_tables
        .iter()
        .filter(|t| find(t).is_none())
        .map(|t| t.to_string())
        .collect();
    let naming = match naming {
        Naming::Detect if missing.is_empty() => Naming::CityForge,
        Naming::Detect => Naming::Auto,
        Naming::CityForge if !missing.is_empty() => {
            return Err(CatalogError::NotCityForge {
                schema: primary_schema.to_owned(),
                missing,
            })
        }
        other => other,
    };
    let auto_name = |t: &TableSchema| {
        if t.schema == "public" {
            t.table.clone()
        } else {
            format!("{}.{}", t.schema, t.table)
        }
    };
    let mut slots: Vec<Option<TableSchema>> = raw.into_iter().map(|t| Some(t.schema)).collect();
    let mut tables = Vec::new();
    let mut unknown_to_preset = Vec::new();
    if naming == Naming::CityForge {
        let mut take = |table: &str| {
            slots
                .iter_mut()
                .find(|slot| {
                    slot.as_ref()
                        .is_some_and(|t| t.schema == primary_schema && t.table == table)
                })
                .and_then(Option::take)
        };
        let mut preset = Vec::new();
        for (model, table) in CITYFORGE_MODELS {
            if let Some(mut schema) = take(table) {
                schema.model = model.to_owned();
                preset.push(schema);
            }
        }
        let mut card_tags = take(CARD_TAGS);
        let mut extra: Vec<TableSchema> = slots.into_iter().flatten().collect();
        for table in &mut extra {
            table.model = auto_name(table);
            unknown_to_preset.push(table.model.clone());
        }
        tables.extend(preset);
        tables.extend(dependency_order(extra));
        if let Some(mut schema) = card_tags.take() {
            schema.model = CARD_TAGS.to_owned();
            schema.section = Section::Relationships;
            tables.push(schema);
        }
    } else {
        let mut all: Vec<TableSchema> = slots.into_iter().flatten().collect();
        for table in &mut all {
            table.model = auto_name(table);
        }
        tables = dependency_order(all);
    }
    Ok(Catalog {
        tables,
        naming,
        unknown_to_preset,
    })
}

/// Sorts tables so that referenced tables come before the tables referencing them. Ties and
/// cycles are broken by the input order, so the result is stable. Self-references are ignored.
pub fn dependency_order(tables: Vec<TableSchema>) -> Vec<TableSchema> {
    let index: HashMap<(&str, &str), usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.schema.as_str(), t.table.as_str()), i))
        .collect();
    // parents[i] = tables that table i references (within the set, excluding itself).
    let parents: Vec<BTreeSet<usize>> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.foreign_keys
                .iter()
                .filter_map(|fk| index.get(&(fk.ref_schema.as_str(), fk.ref_table.as_str())))
                .copied()
                .filter(|&p| p != i)
                .collect()
        })
        .collect();
    let mut done = vec![false; tables.len()];
    let mut order = Vec::with_capacity(tables.len());
    while order.len() < tables.len() {
        let ready = (0..tables.len()).find(|&i| !done[i] && parents[i].iter().all(|&p| done[p]));
        // In a cycle nothing is ready: take the first remaining table.
        let next = ready.unwrap_or_else(|| (0..tables.len()).find(|&i| !done[i]).unwrap_or(0));
        done[next] = true;
        order.push(next);
    }
    let mut slots: Vec<Option<TableSchema>> = tables.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests;
