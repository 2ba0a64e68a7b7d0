//! Secrets written into a pipeline file as plain text. A pipeline file is checked into the
//! application's repository, so a sanitizing secret, a password or a credential in it is readable
//! by everyone who can read the repository (and a known sanitizing secret lets them reverse
//! pseudonyms). `check` and `run` warn about each one; `${VAR}` keeps it in the environment.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::config::line_column;

/// A secret written in the file rather than taken from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiteralSecret {
    /// 1-based line of the value.
    pub line: usize,
    /// 1-based column of the value.
    pub column: usize,
    /// What it is, e.g. `the transform's secret` or `the password in the sink's url`.
    pub what: String,
}

type Table = BTreeMap<String, Spanned<toml::Value>>;

/// The parts of a pipeline file that can hold secrets, read from the text as written.
#[derive(Deserialize)]
struct Holders {
    #[serde(default)]
    source: Option<Table>,
    #[serde(default)]
    transforms: Vec<Table>,
    #[serde(default)]
    sinks: Vec<Table>,
}

/// Every secret written as a literal in `raw` (the file's text before `${VAR}` expansion). A text
/// that is not valid TOML as written has none to report here: parsing reports it.
pub fn literal_secrets(raw: &str) -> Vec<LiteralSecret> {
    let Ok(holders) = toml::from_str::<Holders>(raw) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let tables = holders
        .source
        .iter()
        .map(|table| ("source", table))
        .chain(holders.transforms.iter().map(|table| ("transform", table)))
        .chain(holders.sinks.iter().map(|table| ("sink", table)));
    for (holder, table) in tables {
        for (key, value) in table {
            let mut note = |what: String| {
                let (line, column) = line_column(raw, value.span().start);
                found.push(LiteralSecret { line, column, what });
            };
            match value.get_ref() {
                toml::Value::String(text) if is_secret_key(key) && is_literal(text) => {
                    note(format!("the {holder}'s {key}"));
                }
                toml::Value::String(text)
                    if key == "url" && url_password(text).is_some_and(is_literal) =>
                {
                    note(format!("the password in the {holder}'s url"));
                }
                toml::Value::Table(options) => {
                    for (option, value) in options {
                        if let toml::Value::String(text) = value {
                            if is_secret_key(option) && is_literal(text) {
                                note(format!("{option} in the {holder}'s {key}"));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Keys whose values are secrets: a transform's `secret` and `password`, object-store
/// credentials (`secret_access_key`, `account_key`, `sas_key`, `token`, …), an export file
/// source's age `identity` (a private key; `identity_file` is only its path).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "identity"
        || ["secret", "password", "token", "account_key", "sas_key"]
            .iter()
            .any(|word| key.contains(word))
}

/// A non-empty value with no `${VAR}` in it.
fn is_literal(text: &str) -> bool {
    !text.is_empty() && !text.contains("${")
}

/// The password of a `postgres://user:password@host/db` URL or of a `key=value` connection string.
fn url_password(url: &str) -> Option<&str> {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let (userinfo, _) = authority.rsplit_once('@')?;
        return userinfo.split_once(':').map(|(_, password)| password);
    }
    url.split_whitespace()
        .find_map(|pair| pair.strip_prefix("password="))
        .map(|password| password.trim_matches('\''))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_found_and_variables_are_not() {
        let raw = "[source]\ntype = \"postgres\"\nurl = \"postgres://u:hunter2@db/prod\"\n\n\
                   [[transforms]]\ntype = \"hash\"\nsecret = \"abc\"\n\n\
                   [[transforms]]\ntype = \"email\"\nsecret = \"${SANITIZE_SECRET}\"\n\n\
                   [[transforms]]\ntype = \"password\"\npassword = \"${STAGING_PASSWORD:-staging}\"\n\n\
                   [[sinks]]\ntype = \"postgres\"\nurl = \"host=db password=pw dbname=x\"\n\n\
                   [[sinks]]\ntype = \"postgres\"\nurl = \"postgres://u:${PW}@db/staging\"\n\n\
                   [[sinks]]\ntype = \"export_file\"\nlocation = \"s3://b/k\"\n\
                   store = { region = \"eu\", secret_access_key = \"AKIA\" }\n\
                   recipients = [\"age1public\"]\n";
        let found: Vec<(usize, String)> = literal_secrets(raw)
            .into_iter()
            .map(|s| (s.line, s.what))
            .collect();
        assert_eq!(
            found,
            [
                (3, "the password in the source's url".to_owned()),
                (7, "the transform's secret".to_owned()),
                (19, "the password in the sink's url".to_owned()),
                (28, "secret_access_key in the sink's store".to_owned()),
            ]
        );
    }

    #[test]
    fn a_literal_age_identity_is_found_and_its_file_is_not() {
        let raw = "[source]\ntype = \"export_file\"\nlocation = \"x.age\"\n\
                   identity = \"AGE-SECRET-KEY-1X\"\nidentity_file = \"key.txt\"\n";
        let found: Vec<(usize, String)> = literal_secrets(raw)
            .into_iter()
            .map(|s| (s.line, s.what))
            .collect();
        assert_eq!(found, [(4, "the source's identity".to_owned())]);
        let from_variable = "[source]\ntype = \"export_file\"\nidentity = \"${AGE_KEY}\"\n";
        assert!(literal_secrets(from_variable).is_empty());
    }

    #[test]
    fn text_that_is_not_toml_has_nothing_to_report() {
        assert!(literal_secrets("[[transforms]\nsecret = \"x\"").is_empty());
        assert!(literal_secrets("").is_empty());
    }

    /// Every configuration type a pipeline can hold, each with a secret in every field that can
    /// carry one: none reaches `Debug`. The matches are exhaustive, so a new source, sink or
    /// transform does not compile until it is listed here, and the file must then use it.
    #[test]
    fn no_debug_output_prints_a_secret() {
        use crate::pipeline::config::{PipelineFile, SinkConfig, SourceConfig};
        use crate::transforms::TransformConfig;

        const MARK: &str = "SeCrEt";
        let transforms = format!(
            "[[transforms]]\ntype = \"email\"\nmodel = \"U\"\ncolumns = [\"e\"]\nsecret = \"{MARK}1\"\n\
             [[transforms]]\ntype = \"password\"\nmodel = \"U\"\ncolumns = [\"p\"]\n\
             password = \"{MARK}2\"\nsecret = \"{MARK}3\"\n\
             [[transforms]]\ntype = \"fake\"\nmodel = \"U\"\ncolumns = [\"n\"]\nkind = \"name\"\n\
             secret = \"{MARK}4\"\n\
             [[transforms]]\ntype = \"hash\"\nmodel = \"U\"\ncolumns = [\"h\"]\nsecret = \"{MARK}5\"\n\
             [[transforms]]\ntype = \"redact\"\nmodel = \"U\"\ncolumns = [\"r\"]\n\
             [[transforms]]\ntype = \"null\"\nmodel = \"U\"\ncolumns = [\"x\"]\n\
             [[transforms]]\ntype = \"set\"\nmodel = \"U\"\ncolumns = [\"s\"]\nvalue = 1\n\
             [[transforms]]\ntype = \"truncate\"\nmodel = \"U\"\ncolumns = [\"t\"]\nmax = 3\n\
             [[transforms]]\ntype = \"mask\"\nmodel = \"U\"\ncolumns = [\"m\"]\n\
             [[transforms]]\ntype = \"filter\"\nmodel = \"U\"\n\
             conditions = [{{ column = \"c\", op = \"is_null\" }}]\n\
             [[transforms]]\ntype = \"exclude_models\"\nmodels = [\"Log\"]\n"
        );
        let sinks = format!(
            "[[sinks]]\ntype = \"export_file\"\nlocation = \"s3://b/k\"\n\
             store = {{ secret_access_key = \"{MARK}6\" }}\n\
             [[sinks]]\ntype = \"postgres\"\nurl = \"postgres://u:{MARK}7@db/staging\"\n"
        );
        let sources = [
            format!("[source]\ntype = \"postgres\"\nurl = \"postgres://u:{MARK}8@db/prod\"\n"),
            format!(
                "[source]\ntype = \"export_file\"\nlocation = \"s3://b/k\"\n\
                 store = {{ secret_access_key = \"{MARK}9\" }}\nidentity = \"{MARK}10\"\n\
                 identity_file = \"key.txt\"\n"
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for source in &sources {
            let text = format!("{source}{transforms}{sinks}");
            let file = PipelineFile::parse(std::path::Path::new("p.toml"), &text, &|_| None)
                .unwrap_or_else(|e| panic!("{e}"));
            seen.insert(match file.config.source.get_ref() {
                SourceConfig::Postgres(_) => "source postgres",
                SourceConfig::ExportFile(_) => "source export_file",
            });
            for transform in &file.config.transforms {
                // Spelled out rather than `kind()`: a new configuration type stops this test
                // from compiling until the pipeline text above uses it.
                seen.insert(match transform.get_ref() {
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
                });
            }
            for sink in &file.config.sinks {
                seen.insert(match sink.get_ref() {
                    SinkConfig::ExportFile(_) => "sink export_file",
                    SinkConfig::Postgres(_) => "sink postgres",
                });
            }
            let shown = format!("{file:?}");
            assert!(shown.contains("EmailConfig"), "{shown}");
            assert!(!shown.contains(MARK), "a secret in Debug output: {shown}");
        }
        assert_eq!(seen.len(), 15, "every configuration type is used: {seen:?}");
    }
}
