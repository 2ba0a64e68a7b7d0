//! Target 2: pipeline files, through everything `cityforge-data check FILE` runs without a
//! database (interpolation, parsing, `validate`), plus the catalog checks of `check --connect`
//! against a small made-up catalog.
//!
//! Properties, for any bytes: no panic, no hang, and every error is one clear message: a
//! non-empty Display, and a position (when it has one) inside the file.

use std::path::Path;

use cityforge_data::catalog::{Catalog, Naming};
use cityforge_data::pipeline::config::{PipelineError, PipelineFile, SinkConfig, SourceConfig};
use cityforge_data::pipeline::plan::{check_catalog, validate, RunOptions};
use cityforge_data::record::{Column, ForeignKey, Generated, Repr, Section, TableSchema};
use cityforge_data::storage::{check_retention_pattern, expand_placeholders, Location};
use rand::Rng;

use crate::engine::Target;
use crate::mutate::Mutator;

/// The target as the engine runs it.
pub const TARGET: Target = Target {
    name: "pipeline",
    run,
    mutate,
    dictionary: &[
        "source",
        "sinks",
        "transforms",
        "policy",
        "keep",
        "strict",
        "type",
        "url",
        "schemas",
        "schema",
        "naming",
        "include",
        "exclude",
        "sort",
        "location",
        "store",
        "compress",
        "compact",
        "keep_last",
        "keep_days",
        "mode",
        "confirm",
        "commit_per_model",
        "per_row_fk_checks",
        "model",
        "models",
        "columns",
        "secret",
        "domain",
        "keep_domain",
        "value",
        "password",
        "cost",
        "unusable",
        "kind",
        "length",
        "max",
        "mask",
        "conditions",
        "column",
        "op",
        "match",
        "endpoint",
        "region",
        "allow_http",
        "cityforge",
        "auto",
        "gzip",
        "zstd",
        "none",
        "skip",
        "replace",
        "merge",
        "clean",
        "first_name",
        "last_name",
        "name",
        "phone",
        "street_address",
        "text",
        "all",
        "any",
        "is_null",
        "not_null",
        "in",
        "not_in",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "${SET}",
        "${UNSET}",
        "{timestamp}",
        "{date}",
    ],
};

fn mutate(mutator: &mut Mutator, data: &mut Vec<u8>) {
    if mutator.rng.gen_range(0..4) == 0 {
        mutator.byte_edit(data);
    } else {
        mutator.toml_edit(data);
    }
}

/// The environment the files see: values that need escaping, are empty, long, or look like
/// TOML or like another variable.
pub fn environment(name: &str) -> Option<String> {
    Some(
        match name {
            "SET" | "SANITIZE_SECRET" | "STAGING_PASSWORD" => "value",
            "PRODUCTION_DATABASE_URL" | "STAGING_DATABASE_URL" => {
                "postgres://u:p%40ss@localhost:5432/db"
            }
            "QUOTE" => "a\"b",
            "BACKSLASH" => "C:\\dir\\",
            "NEWLINE" => "line1\nline2",
            "CONTROL" => "tab\there\rcr\u{1}",
            "UNICODE" => "é😀\u{202e}\u{0}",
            "EMPTY" => "",
            "DOLLAR" => "${SET}",
            "INJECT" => "\"\n[source]\ntype = \"postgres\"\n#",
            "LONG" => return Some("y".repeat(100_000)),
            _ => return None,
        }
        .to_owned(),
    )
}

/// Environment variables for the CLI runs (the same values).
pub const ENV_NAMES: &[&str] = &[
    "SET",
    "SANITIZE_SECRET",
    "STAGING_PASSWORD",
    "PRODUCTION_DATABASE_URL",
    "STAGING_DATABASE_URL",
    "QUOTE",
    "BACKSLASH",
    "NEWLINE",
    "CONTROL",
    "EMPTY",
    "DOLLAR",
    "INJECT",
];

fn column(
    name: &str,
    type_name: &str,
    repr: Repr,
    nullable: bool,
    max_chars: Option<u32>,
) -> Column {
    Column {
        name: name.to_owned(),
        type_name: type_name.to_owned(),
        repr,
        array: false,
        binary: repr != Repr::Text && repr != Repr::Numeric && !repr.is_json(),
        nullable,
        has_default: false,
        generated: Generated::No,
        max_chars,
    }
}

fn table(
    model: &str,
    section: Section,
    columns: Vec<Column>,
    unique: Vec<Vec<usize>>,
) -> TableSchema {
    TableSchema {
        model: model.to_owned(),
        schema: "public".to_owned(),
        table: model.to_lowercase(),
        section,
        columns,
        primary_key: vec![0],
        foreign_keys: Vec::new(),
        unique_keys: unique,
        sequences: Vec::new(),
        partitioned: false,
    }
}

/// A catalog like a small CityForge database.
fn catalog() -> Catalog {
    let user = table(
        "User",
        Section::Data,
        vec![
            column("id", "integer", Repr::Int4, false, None),
            column(
                "email",
                "character varying(120)",
                Repr::Text,
                false,
                Some(120),
            ),
            column(
                "password_hash",
                "character varying(128)",
                Repr::Text,
                true,
                Some(128),
            ),
            column(
                "first_name",
                "character varying(50)",
                Repr::Text,
                true,
                Some(50),
            ),
            column("last_name", "text", Repr::Text, true, None),
            column("is_active", "boolean", Repr::Bool, true, None),
            column(
                "created_date",
                "timestamp without time zone",
                Repr::Timestamp,
                true,
                None,
            ),
            column(
                "last_login",
                "timestamp with time zone",
                Repr::TimestampTz,
                true,
                None,
            ),
            column("score", "numeric(10,2)", Repr::Numeric, true, None),
            column("ratio", "double precision", Repr::Float8, true, None),
            column("born", "date", Repr::Date, true, None),
            column("settings", "jsonb", Repr::Json, true, None),
        ],
        vec![vec![0], vec![1]],
    );
    let token = table(
        "TokenBlacklist",
        Section::Data,
        vec![
            column("id", "bigint", Repr::Int8, false, None),
            column("jti", "character varying(36)", Repr::Text, false, Some(36)),
        ],
        vec![vec![0]],
    );
    let tag = table(
        "Tag",
        Section::Data,
        vec![
            column("id", "smallint", Repr::Int2, false, None),
            column("name", "text", Repr::Text, false, None),
        ],
        vec![vec![0], vec![1]],
    );
    let mut card_tags = table(
        "card_tags",
        Section::Relationships,
        vec![
            column("card_id", "integer", Repr::Int4, false, None),
            column("tag_id", "smallint", Repr::Int2, false, None),
        ],
        vec![vec![0, 1]],
    );
    card_tags.primary_key = vec![0, 1];
    card_tags.foreign_keys = vec![ForeignKey {
        name: "card_tags_tag_id_fkey".to_owned(),
        columns: vec![1],
        ref_schema: "public".to_owned(),
        ref_table: "tag".to_owned(),
        ref_columns: vec!["id".to_owned()],
    }];
    Catalog {
        tables: vec![user, token, tag, card_tags],
        naming: Naming::CityForge,
        unknown_to_preset: Vec::new(),
    }
}

/// An error is one clear message: not empty, and its position inside the text.
fn check_error(error: &PipelineError, text: &str) -> String {
    let shown = error.to_string();
    assert!(
        !shown.trim().is_empty(),
        "an error without a message: {error:?}"
    );
    match error {
        PipelineError::At {
            line,
            column,
            message,
            ..
        } => {
            assert!(
                !message.trim().is_empty(),
                "an error without a message: {shown}"
            );
            let lines = text.split('\n').count();
            assert!(
                *line >= 1 && *line <= lines && *column >= 1,
                "an error at line {line}, column {column} of a {lines}-line file: {shown}"
            );
            if let Some(this_line) = text.split('\n').nth(line - 1) {
                assert!(
                    *column <= this_line.chars().count() + 1,
                    "an error at column {column} of a {}-character line: {shown}",
                    this_line.chars().count()
                );
            }
            format!("at: {}", message.chars().take(60).collect::<String>())
        }
        PipelineError::Unset { vars, .. } => {
            assert!(
                !vars.is_empty(),
                "an unset-variables error without variables"
            );
            "unset".to_owned()
        }
        PipelineError::Io { .. } => "io".to_owned(),
        PipelineError::CommandLine(_) => {
            panic!("an error in a file that names no place in it: {shown}")
        }
        PipelineError::Several(errors) => {
            assert!(
                errors.len() >= 2,
                "several errors, but {}: {shown}",
                errors.len()
            );
            let each: Vec<String> = errors.iter().map(|e| check_error(e, text)).collect();
            format!("several: {}", each.join(" | "))
        }
    }
}

/// Runs one input; returns its outcome signature.
pub fn run(input: &[u8]) -> String {
    let raw = String::from_utf8_lossy(input);
    let path = Path::new("fuzz.toml");
    let file = match PipelineFile::parse(path, &raw, &environment) {
        Ok(file) => file,
        Err(error) => {
            let text = cityforge_data::pipeline::config::interpolate(&raw, &environment).0;
            return format!("parse {}", check_error(&error, &text));
        }
    };
    let mut outcome = String::from("parsed");
    if let Err(error) = file.require_variables() {
        outcome = format!("{outcome}, {}", check_error(&error, file.text.expose()));
    }
    for yes in [false, true] {
        if let Err(error) = validate(
            &file,
            RunOptions {
                yes,
                ..RunOptions::default()
            },
        ) {
            outcome = format!(
                "{outcome}, validate {}",
                check_error(&error, file.text.expose())
            );
        }
    }
    if let Err(error) = check_catalog(&file, &catalog()) {
        outcome = format!(
            "{outcome}, catalog {}",
            check_error(&error, file.text.expose())
        );
    }
    // The locations, as building the pipeline would read them.
    let mut locations: Vec<&str> = Vec::new();
    if let SourceConfig::ExportFile(source) = file.config.source.get_ref() {
        locations.push(&source.location);
    }
    for sink in &file.config.sinks {
        if let SinkConfig::ExportFile(sink) = sink.get_ref() {
            locations.push(&sink.location);
        }
    }
    let now = chrono::NaiveDate::from_ymd_opt(2025, 1, 2)
        .and_then(|d| d.and_hms_opt(3, 4, 5))
        .expect("a date");
    for location in locations {
        let expanded = expand_placeholders(location, now);
        if let Err(error) = Location::parse(&expanded) {
            assert!(
                !error.to_string().trim().is_empty(),
                "a location error without a message"
            );
        }
        if let Err(error) = check_retention_pattern(location) {
            assert!(
                !error.to_string().trim().is_empty(),
                "a retention error without a message"
            );
        }
    }
    outcome
}
