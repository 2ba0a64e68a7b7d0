//! Connection settings: precedence, libpq's variables and password file, masking.

use super::*;

#[test]
fn masks_passwords_of_strings_that_do_not_parse() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let shapes = [
        "postgres://sec:{pw}@127.0.0.1:99999/cft",
        "postgres://sec:{pw}@127.0.0.1:65536/cft",
        "postgresql://sec:{pw}@host:1:2/cft",
        "postgres://sec:{pw}@[::1/cft",
        "postgres://sec:{pw}@[fe80::1%eth0]:x/cft",
        "postgres://sec:{pw}@ho st/cft",
        "postgres://sec:{pw}@/cft?port=abc",
        "postgres://u@h/db?sslmode=nope&password={pw}",
        "host=h port=99999 user=u password={pw} dbname=d",
        "host=h user=u password='{pw}' dbname=d port=x",
        "postgres://sec:{pw}@h:5432/db",
    ];
    for round in 0..300 {
        let length = rng.gen_range(1..24);
        // Passwords of letters, digits and the punctuation people put in them.
        let alphabet: Vec<char> = "abcXYZ0129!$%^*()-_+[]{};.,~".chars().collect();
        let password: String = (0..length)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect::<String>()
            + &format!("Pw{round}");
        for shape in shapes {
            let url = shape.replace("{pw}", &password);
            let masked = mask_url(&url);
            assert!(!masked.contains(&password), "{url} -> {masked}");
            if let Err(error) = ConnectionSettings::from_url(&url) {
                let text = error.to_string();
                assert!(!text.contains(&password), "{url} -> {text}");
            }
        }
    }
}

#[test]
fn masks_passwords() {
    assert_eq!(
        mask_url("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert!(!mask_url("postgres://u@h/db?password=secret&x=1").contains("secret"));
    let settings = ConnectionSettings::from_url("postgres://u:secret@h:5432/db").unwrap();
    assert!(!settings.to_string().contains("secret"));
    assert!(!format!("{settings:?}").contains("secret"));
}

#[test]
fn parses_sslmode_and_root_cert() {
    let settings = ConnectionSettings::from_url(
        "postgres://u:p@db.example:6543/app?sslmode=verify-full&sslrootcert=/tmp/ca.pem&application_name=x",
    )
    .unwrap();
    assert_eq!(settings.ssl_mode, SslMode::VerifyFull);
    assert_eq!(settings.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
    assert_eq!(settings.server(), "db.example:6543");
    assert_eq!(settings.database(), "app");
    assert_eq!(settings.config.get_application_name(), Some("x"));
}

/// Resolves with `vars` as the whole environment.
fn resolve_with(
    url: Option<&str>,
    overrides: &ConnectionOverrides,
    vars: &[(&str, &str)],
) -> Result<ConnectionSettings, PgError> {
    let env = |name: &str| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
            .filter(|v| !v.is_empty())
    };
    ConnectionSettings::resolve_in(url, overrides, &env)
}

/// host:port/database user password application_name sslmode of resolved settings.
fn summary(settings: &ConnectionSettings) -> String {
    let password = settings
        .config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{}/{} {} {} {} {:?}",
        settings.server(),
        settings.database(),
        settings.config.get_user().unwrap_or("-"),
        password,
        settings.config.get_application_name().unwrap_or("-"),
        settings.ssl_mode,
    )
}

const SEED: [(&str, &str); 5] = [
    ("POSTGRES_HOST", "seedhost"),
    ("POSTGRES_PORT", "1111"),
    ("POSTGRES_DB", "seeddb"),
    ("POSTGRES_USER", "seeduser"),
    ("POSTGRES_PASSWORD", "seedpw"),
];

const PG: [(&str, &str); 5] = [
    ("PGHOST", "pghost"),
    ("PGPORT", "2222"),
    ("PGDATABASE", "pgdb"),
    ("PGUSER", "pguser"),
    ("PGPASSWORD", "pgpw"),
];

/// URL, flags, environment, expected summary.
type Case<'a> = (
    Option<&'a str>,
    &'a ConnectionOverrides,
    &'a [(&'a str, &'a str)],
    &'a str,
);

#[test]
fn precedence_is_flags_then_url_then_pg_then_postgres_variables() {
    let url = "postgres://urluser:urlpw@urlhost:3333/urldb";
    let flags = ConnectionOverrides {
        host: Some("flaghost".into()),
        port: Some(4444),
        user: Some("flaguser".into()),
        dbname: Some("flagdb".into()),
    };
    let none = ConnectionOverrides::default();
    let both: Vec<(&str, &str)> = SEED.iter().chain(PG.iter()).copied().collect();
    let cases: [Case; 7] = [
        (None, &none, &SEED, "seedhost:1111/seeddb seeduser seedpw"),
        (None, &none, &PG, "pghost:2222/pgdb pguser pgpw"),
        (None, &none, &both, "pghost:2222/pgdb pguser pgpw"),
        (Some(url), &none, &both, "urlhost:3333/urldb urluser urlpw"),
        (
            Some(url),
            &flags,
            &both,
            "flaghost:4444/flagdb flaguser urlpw",
        ),
        (None, &flags, &both, "flaghost:4444/flagdb flaguser pgpw"),
        (None, &flags, &SEED, "flaghost:4444/flagdb flaguser seedpw"),
    ];
    for (url, overrides, vars, expected) in cases {
        let settings = resolve_with(url, overrides, vars).unwrap();
        let summary = summary(&settings);
        assert!(
            summary.starts_with(expected),
            "{url:?} {overrides:?} {vars:?}: {summary}"
        );
        assert!(!settings.to_string().contains("pw"), "{settings}");
    }
}

#[test]
fn pg_variables_fill_what_the_url_leaves_out_but_postgres_variables_do_not() {
    let mut vars: Vec<(&str, &str)> = SEED.to_vec();
    vars.extend([
        ("PGPASSWORD", "pgpw"),
        ("PGAPPNAME", "nightly"),
        ("PGSSLMODE", "require"),
    ]);
    let settings = resolve_with(
        Some("postgres://u@h/db"),
        &ConnectionOverrides::default(),
        &vars,
    )
    .unwrap();
    assert_eq!(summary(&settings), "h:5432/db u pgpw nightly Require");
    let settings = resolve_with(
        Some("postgres://u@h/db?application_name=x&sslmode=disable"),
        &ConnectionOverrides::default(),
        &vars,
    )
    .unwrap();
    assert_eq!(summary(&settings), "h:5432/db u pgpw x Disable");
    // A URL without a password never gets the seed's: it may point at another server.
    let settings = resolve_with(
        Some("postgres://u@h/db"),
        &ConnectionOverrides::default(),
        &SEED,
    )
    .unwrap();
    assert_eq!(summary(&settings), "h:5432/db u - cityforge-data Prefer");
}

#[test]
fn something_must_name_the_server_or_database() {
    let none = ConnectionOverrides::default();
    for vars in [
        &[][..],
        &[("PGUSER", "u"), ("PGPORT", "5432"), ("PGPASSWORD", "pw")][..],
        &[("PGSSLMODE", "require"), ("PGAPPNAME", "x")][..],
    ] {
        let error = resolve_with(None, &none, vars).unwrap_err();
        assert!(matches!(error, PgError::NoSettings), "{vars:?}: {error}");
    }
    for (overrides, vars) in [
        (&none, &[("PGHOST", "h")][..]),
        (&none, &[("PGDATABASE", "d")][..]),
        (
            &ConnectionOverrides {
                host: Some("h".into()),
                ..ConnectionOverrides::default()
            },
            &[][..],
        ),
        (
            &ConnectionOverrides {
                dbname: Some("d".into()),
                ..ConnectionOverrides::default()
            },
            &[][..],
        ),
    ] {
        let settings = resolve_with(None, overrides, vars).unwrap();
        assert_eq!(
            settings.config.get_application_name(),
            Some(APPLICATION_NAME)
        );
    }
    // Half-set POSTGRES_* stays an error, whatever else is set.
    let error = resolve_with(
        None,
        &none,
        &[("POSTGRES_HOST", "h"), ("PGDATABASE", "d"), ("PGUSER", "u")],
    )
    .unwrap_err();
    assert!(
        matches!(error, PgError::IncompleteSeedVariables { .. }),
        "{error}"
    );
}

#[test]
fn bad_pg_variables_are_errors_without_the_password() {
    let none = ConnectionOverrides::default();
    for (name, value, expected) in [
        ("PGPORT", "54x", "port \"54x\" is not a port number"),
        ("PGSSLMODE", "sometimes", "unknown sslmode \"sometimes\""),
    ] {
        let vars = [("PGHOST", "h"), ("PGPASSWORD", "hunter2"), (name, value)];
        let error = resolve_with(None, &none, &vars).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[test]
fn reads_password_files_like_libpq() {
    let text = "# comment\n\
                other:5432:*:u:wrong\n\
                h:5432:db:u:first\\:pw\n\
                *:*:*:u:fallback:with:colons\n\
                we\\:ird:1:*:*:escaped\\\\\n";
    let cases = [
        (["h", "5432", "db", "u"], Some("first:pw")),
        (["h", "5433", "db", "u"], Some("fallback:with:colons")),
        (["x", "5432", "other", "u"], Some("fallback:with:colons")),
        (["we:ird", "1", "db", "v"], Some("escaped\\")),
        (["h", "5432", "db", "v"], None),
    ];
    for (wanted, expected) in cases {
        assert_eq!(
            pgpass_lookup(text, wanted).as_deref(),
            expected,
            "{wanted:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn uses_a_private_password_file_and_ignores_a_readable_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(&file, "h:5432:db:u:from-file\n").unwrap();
    let path = file.to_str().unwrap();
    let vars = [
        ("PGHOST", "h"),
        ("PGDATABASE", "db"),
        ("PGUSER", "u"),
        ("PGPASSFILE", path),
    ];
    let none = ConnectionOverrides::default();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let settings = resolve_with(None, &none, &vars).unwrap();
    assert_eq!(settings.config.get_password(), Some(&b"from-file"[..]));
    assert!(!settings.to_string().contains("from-file"));
    // PGPASSWORD wins over the file.
    let mut with_password = vars.to_vec();
    with_password.push(("PGPASSWORD", "explicit"));
    let settings = resolve_with(None, &none, &with_password).unwrap();
    assert_eq!(settings.config.get_password(), Some(&b"explicit"[..]));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let settings = resolve_with(None, &none, &vars).unwrap();
    assert_eq!(settings.config.get_password(), None);
}

#[test]
fn parses_urls_and_key_value_strings_as_before() {
    let cases = [
        (
            "postgres://u%40x:p%3Aw@[::1]:5433/d%20b",
            "::1:5433/d b u@x p:w",
        ),
        ("postgresql://%2Ftmp%2Fsock/db", "/tmp/sock:5432/db"),
        (
            "postgres://u@h/db?connect_timeout=7&options=-c%20x%3Dy",
            "h:5432/db u -",
        ),
        (
            "host=h port=6 user='it\\'s' password=pw dbname=d",
            "h:6/d it's pw",
        ),
        ("host=h user=u connect_timeout=7", "h:5432/u u -"),
    ];
    for (url, expected) in cases {
        let settings = ConnectionSettings::from_url(url).unwrap();
        let summary = summary(&settings);
        assert!(summary.starts_with(expected), "{url}: {summary}");
        assert_eq!(
            settings.config.get_application_name(),
            Some(APPLICATION_NAME)
        );
    }
    let settings =
        ConnectionSettings::from_url("postgres://u@h/db?connect_timeout=7&options=-c%20x%3Dy")
            .unwrap();
    assert_eq!(
        settings.config.get_connect_timeout(),
        Some(&std::time::Duration::from_secs(7))
    );
    assert_eq!(settings.config.get_options(), Some("-c x=y"));
}

#[test]
fn rejects_unknown_sslmode_without_leaking_password() {
    let error = ConnectionSettings::from_url("postgres://u:secret@h/db?sslmode=sometimes")
        .unwrap_err()
        .to_string();
    assert!(error.contains("sometimes"), "{error}");
    assert!(!error.contains("secret"), "{error}");
}
