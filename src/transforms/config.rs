//! [`TransformConfig`]: one `[[transforms]]` table of a pipeline file, and the one `match` that
//! checks it and builds its [`Transform`]. Each variant's struct lives with its transform.

use serde::Deserialize;

use super::{
    EmailConfig, ExcludeModelsConfig, FakeConfig, FilterConfig, HashConfig, MaskConfig, NullConfig,
    PasswordConfig, RedactConfig, SetConfig, Transform, TransformError, TruncateConfig,
};
use crate::record::TableSchema;

/// One `[[transforms]]` table of a pipeline file, chosen by its `type` key. Unknown keys are
/// refused (each variant's struct denies them), so a typo never silently disables a rule.
#[derive(Deserialize, Debug, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransformConfig {
    /// `type = "email"`: keyed pseudonyms for e-mail addresses.
    Email(EmailConfig),
    /// `type = "password"`: one known or unusable password hash for every row.
    Password(PasswordConfig),
    /// `type = "fake"`: realistic names, phones, addresses or text, deterministic per input.
    Fake(FakeConfig),
    /// `type = "hash"`: keyed hex hash of the value.
    Hash(HashConfig),
    /// `type = "redact"`: a constant text in place of every non-NULL value.
    Redact(RedactConfig),
    /// `type = "null"`: NULL in every row.
    Null(NullConfig),
    /// `type = "set"`: a constant of the column's type in every row.
    Set(SetConfig),
    /// `type = "truncate"`: text cut to a maximum number of characters.
    Truncate(TruncateConfig),
    /// `type = "mask"`: text with all but its first characters masked.
    Mask(MaskConfig),
    /// `type = "filter"`: drops the rows matching conditions.
    Filter(FilterConfig),
    /// `type = "exclude_models"`: whole models left out (the pipeline removes them from the
    /// source's selection).
    ExcludeModels(ExcludeModelsConfig),
}

impl TransformConfig {
    /// The model the transform targets (empty for `exclude_models`, which names several: see
    /// [`ExcludeModelsConfig::models`]).
    pub fn model(&self) -> &str {
        match self {
            TransformConfig::Email(c) => &c.model,
            TransformConfig::Password(c) => &c.model,
            TransformConfig::Fake(c) => &c.model,
            TransformConfig::Hash(c) => &c.model,
            TransformConfig::Redact(c) => &c.model,
            TransformConfig::Null(c) => &c.model,
            TransformConfig::Set(c) => &c.model,
            TransformConfig::Truncate(c) => &c.model,
            TransformConfig::Mask(c) => &c.model,
            TransformConfig::Filter(c) => &c.model,
            TransformConfig::ExcludeModels(_) => "",
        }
    }

    /// The columns the transform reads or rewrites (for a filter: the columns of its conditions).
    pub fn columns(&self) -> &[String] {
        match self {
            TransformConfig::Email(c) => &c.columns,
            TransformConfig::Password(c) => &c.columns,
            TransformConfig::Fake(c) => &c.columns,
            TransformConfig::Hash(c) => &c.columns,
            TransformConfig::Redact(c) => &c.columns,
            TransformConfig::Null(c) => &c.columns,
            TransformConfig::Set(c) => &c.columns,
            TransformConfig::Truncate(c) => &c.columns,
            TransformConfig::Mask(c) => &c.columns,
            TransformConfig::Filter(c) => c.columns(),
            TransformConfig::ExcludeModels(_) => &[],
        }
    }

    /// The `type` of the transform as written in the pipeline file.
    pub fn kind(&self) -> &'static str {
        match self {
            TransformConfig::Email(_) => "email",
            TransformConfig::Password(_) => "password",
            TransformConfig::Fake(_) => "fake",
            TransformConfig::Hash(_) => "hash",
            TransformConfig::Redact(_) => "redact",
            TransformConfig::Null(_) => "null",
            TransformConfig::Set(_) => "set",
            TransformConfig::Truncate(_) => "truncate",
            TransformConfig::Mask(_) => "mask",
            TransformConfig::Filter(_) => "filter",
            TransformConfig::ExcludeModels(_) => "exclude_models",
        }
    }

    /// Checks the configuration on its own, without I/O and before the catalog is known: secrets
    /// present, lengths and costs in range, filter operators given the values they need.
    pub fn validate(&self) -> Result<(), TransformError> {
        match self {
            TransformConfig::Email(c) => c.validate(),
            TransformConfig::Password(c) => c.validate(),
            TransformConfig::Fake(c) => c.validate(),
            TransformConfig::Hash(c) => c.validate(),
            TransformConfig::Redact(c) => c.validate(),
            TransformConfig::Null(c) => c.validate(),
            TransformConfig::Set(c) => c.validate(),
            TransformConfig::Truncate(c) => c.validate(),
            TransformConfig::Mask(c) => c.validate(),
            TransformConfig::Filter(c) => c.validate(),
            TransformConfig::ExcludeModels(c) => c.validate(),
        }
    }

    /// Checks the transform against the schema of its model's table: the columns exist, are not
    /// key columns, have a type the transform can produce, and the values it produces fit the
    /// column's length limit and uniqueness. Call it with the table whose model is
    /// [`model`](Self::model); [`check_catalog`](Self::check_catalog) finds the table itself.
    pub fn check(&self, table: &TableSchema) -> Result<(), TransformError> {
        self.validate()?;
        match self {
            TransformConfig::Email(c) => c.check(table),
            TransformConfig::Password(c) => c.check(table),
            TransformConfig::Fake(c) => c.check(table),
            TransformConfig::Hash(c) => c.check(table),
            TransformConfig::Redact(c) => c.check(table),
            TransformConfig::Null(c) => c.check(table),
            TransformConfig::Set(c) => c.check(table),
            TransformConfig::Truncate(c) => c.check(table),
            TransformConfig::Mask(c) => c.check(table),
            TransformConfig::Filter(c) => c.check(table),
            TransformConfig::ExcludeModels(_) => Ok(()),
        }
    }

    /// [`check`](Self::check) against the model's table among all the selected `tables`, plus what
    /// only the whole selection shows: a rewritten column that another table's foreign key
    /// references, or a filter on a model that selected models reference (dropping its rows would
    /// leave theirs pointing at nothing).
    pub fn check_catalog(&self, tables: &[TableSchema]) -> Result<(), TransformError> {
        if let TransformConfig::ExcludeModels(c) = self {
            // The selection already left them out; there is nothing to check against.
            return c.validate();
        }
        let model = self.model();
        let Some(table) = tables.iter().find(|t| t.model == model) else {
            let models: Vec<&str> = tables.iter().map(|t| t.model.as_str()).collect();
            return Err(TransformError::Config(format!(
                "{} transform: model {model} is not among the selected models ({})",
                self.kind(),
                models.join(", ")
            )));
        };
        self.check(table)?;
        let references = tables.iter().flat_map(|other| {
            other
                .foreign_keys
                .iter()
                .filter(|fk| fk.ref_schema == table.schema && fk.ref_table == table.table)
                .map(move |fk| (other, fk))
        });
        if let TransformConfig::Filter(_) = self {
            let referencing: Vec<String> = references
                .map(|(other, fk)| format!("{} (foreign key {})", other.model, fk.name))
                .collect();
            if !referencing.is_empty() {
                return Err(TransformError::Config(format!(
                    "filter transform on model {model}: refused because {} reference{} it; dropping \
                     rows of {model} would leave rows that point at them, which an import \
                     rejects. Leave the referencing models out of the selection, or filter \
                     without removing referenced rows",
                    referencing.join(", "),
                    if referencing.len() == 1 { "s" } else { "" },
                )));
            }
            return Ok(());
        }
        for (other, fk) in references {
            for column in self.columns() {
                if fk.ref_columns.contains(column) {
                    return Err(TransformError::Config(format!(
                        "{} transform on model {model}: column {column} is referenced by model \
                         {} (foreign key {}); rewriting it would break references",
                        self.kind(),
                        other.model,
                        fk.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Builds the transform, after [`validate`](Self::validate). Expensive one-off work (the
    /// bcrypt hash of a development password) is done here, once.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        self.validate()?;
        match self {
            TransformConfig::Email(c) => c.build(),
            TransformConfig::Password(c) => c.build(),
            TransformConfig::Fake(c) => c.build(),
            TransformConfig::Hash(c) => c.build(),
            TransformConfig::Redact(c) => c.build(),
            TransformConfig::Null(c) => c.build(),
            TransformConfig::Set(c) => c.build(),
            TransformConfig::Truncate(c) => c.build(),
            TransformConfig::Mask(c) => c.build(),
            TransformConfig::Filter(c) => c.build(),
            TransformConfig::ExcludeModels(c) => c.build(),
        }
    }

    /// For a filter on `table` read from PostgreSQL: the SQL condition that keeps the rows the
    /// filter keeps, to put after `WHERE` in the source query (`None` for other transforms, other
    /// tables, and tables read from an export file). Applying the filter again in memory after
    /// the push-down drops nothing more.
    pub fn sql_condition(&self, table: &TableSchema) -> Option<String> {
        match self {
            TransformConfig::Filter(c) => c.sql_condition(table),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::record::Repr;

    #[test]
    fn every_type_parses_and_reports_itself() {
        let cases = [
            ("email", "secret = \"s\""),
            ("password", "value = \"!\""),
            ("fake", "kind = \"name\"\nsecret = \"s\""),
            ("hash", "secret = \"s\""),
            ("redact", ""),
            ("null", ""),
            ("set", "value = \"x\""),
            ("truncate", "max = 3"),
            ("mask", "keep = 1"),
        ];
        for (kind, extra) in cases {
            let config = config(&format!(
                "type = \"{kind}\"\nmodel = \"User\"\ncolumns = [\"bio\"]\n{extra}"
            ));
            assert_eq!(config.kind(), kind);
            assert_eq!(config.model(), "User");
            assert_eq!(config.columns(), ["bio".to_owned()]);
            config.validate().unwrap();
        }
        let filter = config(
            "type = \"filter\"\nmodel = \"User\"\nconditions = [{ column = \"age\", op = \"<\", \
             value = 18 }, { column = \"bio\", op = \"is_null\" }]",
        );
        assert_eq!(filter.kind(), "filter");
        assert_eq!(filter.columns(), ["age".to_owned(), "bio".to_owned()]);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let cases = [
            ("email", "secret = \"s\"\ndomian = \"x.test\"", "domian"),
            ("hash", "secret = \"s\"\nlenght = 30", "lenght"),
            ("redact", "colour = \"red\"", "colour"),
            ("null", "value = 1", "value"),
            ("mask", "keep = 1\nkepe = 2", "kepe"),
            ("truncate", "max = 3\nmin = 1", "min"),
            ("password", "value = \"!\"\nhash = \"x\"", "hash"),
            (
                "fake",
                "kind = \"name\"\nsecret = \"s\"\nlocale = \"fr\"",
                "locale",
            ),
            ("set", "value = 1\nvalues = 2", "values"),
        ];
        for (kind, extra, key) in cases {
            let error = parse(&format!(
                "type = \"{kind}\"\nmodel = \"User\"\ncolumns = [\"bio\"]\n{extra}"
            ))
            .unwrap_err();
            assert!(
                error.contains(&format!("unknown field `{key}`")),
                "{kind}: {error}"
            );
        }
        let error = parse("type = \"filter\"\nmodel = \"User\"\nconditions = []\nwhere = \"x\"")
            .unwrap_err();
        assert!(error.contains("unknown field `where`"), "{error}");
        let error = parse(
            "type = \"filter\"\nmodel = \"User\"\nconditions = [{ column = \"a\", op = \"=\", \
             value = 1, vlaue = 2 }]",
        )
        .unwrap_err();
        assert!(error.contains("unknown field `vlaue`"), "{error}");
        let error = parse("type = \"scramble\"\nmodel = \"User\"").unwrap_err();
        assert!(error.contains("scramble"), "{error}");
    }

    #[test]
    fn debug_never_prints_secrets() {
        for text in [
            "type = \"email\"\nmodel = \"U\"\ncolumns = [\"e\"]\nsecret = \"hunter2-secret\"",
            "type = \"hash\"\nmodel = \"U\"\ncolumns = [\"e\"]\nsecret = \"hunter2-secret\"",
            "type = \"fake\"\nmodel = \"U\"\ncolumns = [\"e\"]\nkind = \"name\"\nsecret = \"hunter2-secret\"",
            "type = \"password\"\nmodel = \"U\"\ncolumns = [\"e\"]\npassword = \"hunter2-secret\"",
            "type = \"password\"\nmodel = \"U\"\ncolumns = [\"e\"]\nunusable = true\nsecret = \"hunter2-secret\"",
        ] {
            let debug = format!("{:?}", config(text));
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(debug.contains("redacted"), "{debug}");
        }
    }

    #[test]
    fn check_refuses_missing_key_and_mistyped_columns() {
        let users = users();
        let cases = [
            (
                "email",
                "secret = \"s\"",
                "nope",
                "no column nope; its columns are: id, email",
            ),
            (
                "hash",
                "secret = \"s\"",
                "id",
                "primary-key column; rewriting it would break references",
            ),
            ("redact", "", "team_id", "foreign-key column"),
            (
                "mask",
                "keep = 1",
                "age",
                "type integer, but this transform needs a text column",
            ),
            ("null", "", "nickname", "NOT NULL"),
            ("null", "", "id", "primary-key"),
            ("redact", "", "email", "is unique"),
            ("truncate", "max = 5", "email", "is unique"),
            ("set", "value = \"x\"", "team_id", "foreign-key"),
        ];
        for (kind, extra, column, want) in cases {
            let config = config(&format!(
                "type = \"{kind}\"\nmodel = \"User\"\ncolumns = [\"{column}\"]\n{extra}"
            ));
            let error = config.check(&users).unwrap_err().to_string();
            assert!(error.contains(want), "{kind} on {column}: {error}");
            assert!(error.contains("model User"), "{error}");
        }
        // NULL cannot break a reference: a nullable foreign key may be cleared.
        config("type = \"null\"\nmodel = \"User\"\ncolumns = [\"team_id\"]")
            .check(&users)
            .unwrap();
    }

    #[test]
    fn check_catalog_sees_references_from_other_tables() {
        let users = users();
        let mut posts = table(
            "ForumPost",
            vec![
                column("id", "integer", Repr::Int4),
                column("author_id", "integer", Repr::Int4),
                text("author_email", None),
            ],
        );
        posts.table = "forum_posts".into();
        posts.foreign_keys = vec![
            crate::record::ForeignKey {
                name: "forum_posts_author_id_fkey".into(),
                columns: vec![1],
                ref_schema: "public".into(),
                ref_table: "users".into(),
                ref_columns: vec!["id".into()],
            },
            crate::record::ForeignKey {
                name: "forum_posts_author_email_fkey".into(),
                columns: vec![2],
                ref_schema: "public".into(),
                ref_table: "users".into(),
                ref_columns: vec!["email".into()],
            },
        ];
        let tables = vec![users.clone(), posts.clone()];
        let email =
            config("type = \"email\"\nmodel = \"User\"\ncolumns = [\"email\"]\nsecret = \"s\"");
        email.check(&users).unwrap();
        let error = email.check_catalog(&tables).unwrap_err().to_string();
        assert!(error.contains("referenced by model ForumPost"), "{error}");

        let filter = config(
            "type = \"filter\"\nmodel = \"User\"\nconditions = [{ column = \"age\", op = \"<\", \
             value = 18 }]",
        );
        filter.check(&users).unwrap();
        let error = filter.check_catalog(&tables).unwrap_err().to_string();
        assert!(error.contains("refused because ForumPost"), "{error}");
        assert!(error.contains("forum_posts_author_id_fkey"), "{error}");
        // Alone, or with models that do not reference it, the filter is fine.
        filter.check_catalog(std::slice::from_ref(&users)).unwrap();
        let error = filter.check_catalog(&[posts]).unwrap_err().to_string();
        assert!(
            error.contains("not among the selected models (ForumPost)"),
            "{error}"
        );
    }
}
